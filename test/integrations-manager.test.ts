/**
 * IntegrationManager as a coordinator over its parts (storage, sealing, catalog entries): what
 * crosses between them and is easy to lose when they move — a key rotation whose save fails leaves
 * the cipher, the key check and every sealed value as they were; an attached tool detaches under
 * the name it was attached with; the helpers keep one definition behind both entry points.
 */
import { describe, expect, it, vi } from 'vitest';
import { PromptCatalog } from '../src/catalog/prompts.js';
import { ResourceCatalog } from '../src/catalog/resources.js';
import { ToolCatalog } from '../src/catalog/tools.js';
import * as integrations from '../src/integrations/index.js';
import { createEphemeralCipher, createMemoryIntegrationStore } from '../src/integrations/index.js';
import { IntegrationManager, integrationResourceUri, namespacedName } from '../src/integrations/manager.js';
import type { IntegrationSnapshot, IntegrationStore } from '../src/integrations/types.js';

const API_KEY = 'sk-test-0123456789abcdef';

/** A memory store whose saves fail while `failing` is set; `saved` is the last snapshot it took. */
function refusingStore() {
  const inner = createMemoryIntegrationStore();
  const state = { failing: false, saved: undefined as IntegrationSnapshot | undefined };
  const store: IntegrationStore = {
    label: 'refusing store',
    load: () => inner.load(),
    async save(snapshot) {
      if (state.failing) throw new Error('save refused');
      state.saved = structuredClone(snapshot);
      await inner.save(snapshot);
    },
  };
  return { store, state };
}

function managerOn(store: IntegrationStore, cipher = createEphemeralCipher()) {
  const tools = new ToolCatalog({ onChange: () => {} });
  const manager = new IntegrationManager({
    store,
    cipher,
    tools,
    resources: new ResourceCatalog({ onChange: () => {} }),
    prompts: new PromptCatalog({ onChange: () => {} }),
  });
  return { manager, tools };
}

describe('IntegrationManager over its parts', () => {
  it('keeps cipher, key check and sealed values when a key rotation cannot be saved', async () => {
    const { store, state } = refusingStore();
    const { manager } = managerOn(store);
    await manager.ready;
    await manager.create({
      id: 'crm',
      name: 'CRM',
      model: { provider: 'openai', model: 'gpt-4.1', apiKey: API_KEY },
      secrets: { token: 'token-0123456789abcdef' },
    });
    const before = structuredClone(state.saved);
    const rotated = vi.fn();
    manager.on('keyRotated', rotated);
    state.failing = true;
    await expect(manager.rotateKey(await createEphemeralCipher())).rejects.toThrow('save refused');
    state.failing = false;
    expect(rotated).not.toHaveBeenCalled();
    expect(manager.modelConfig('crm')?.apiKey).toBe(API_KEY);
    // The next write is sealed under the old key, with the old key check.
    await manager.update('crm', { description: 'after' });
    expect(state.saved?.keyCheck).toBe(before?.keyCheck);
    expect(state.saved?.integrations[0]?.model?.apiKey?.split(':')[2]).toBe(
      before?.integrations[0]?.model?.apiKey?.split(':')[2],
    );
    // And a manager opened on the same store with a fresh cipher is refused: the old key sealed it.
    const { manager: other } = managerOn(store);
    await expect(other.ready).rejects.toThrow(/the secret key does not open this store/);
    await manager.close();
  });

  it('detaches an attached tool under the name it was attached with, once', async () => {
    const { store } = refusingStore();
    const { manager, tools } = managerOn(store);
    await manager.ready;
    await manager.create({ id: 'crm', name: 'CRM' });
    const definition = { name: 'ping', handler: () => 'pong' };
    const detached = vi.fn();
    manager.on('toolDetached', detached);
    const attached = manager.attachTool('crm', definition);
    expect(attached.name).toBe('crm__ping');
    definition.name = 'renamed';
    attached.remove();
    attached.remove();
    expect(detached).toHaveBeenCalledTimes(1);
    expect(detached).toHaveBeenCalledWith({ id: 'crm', tool: 'crm__ping' });
    expect(tools.list().map((t) => t.name)).toEqual([]);
    expect(manager.get('crm')?.contributes.tools).toEqual([]);
    await manager.close();
  });

  it('exports one namespacedName and integrationResourceUri from manager.ts and the index', () => {
    expect(integrations.namespacedName).toBe(namespacedName);
    expect(integrations.integrationResourceUri).toBe(integrationResourceUri);
    expect(namespacedName('crm', 'search')).toBe('crm__search');
    expect(integrationResourceUri('crm', 'readme')).toBe('integration://crm/readme');
  });
});
