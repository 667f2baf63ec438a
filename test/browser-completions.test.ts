/**
 * The WebSocket completion example as a person uses it: examples/completions-websocket.ts runs as
 * its own process (with a key), a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) opens its page, types the key, streams a completion from the loopback model and
 * sees the text arrive, then cancels a second one part-way; a wrong key shows the refusal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whichProgram } from './support/systemPackages.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const KEY = 'browser-key-0123456789abcdef0123';

let child: ChildProcess | undefined;
let browser: Browser | undefined;
let url = '';

/** Starts the example on a free port; resolves with the page URL it prints. */
function startExample(): Promise<string> {
  child = spawn(process.execPath, ['--import', 'tsx', `${root}examples/completions-websocket.ts`], {
    cwd: root,
    env: {
      ...process.env,
      PORT: '0',
      MCPKIT_API_KEY: KEY,
      OPENAI_API_KEY: '',
      TSX_TSCONFIG_PATH: `${root}tsconfig.json`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  return new Promise((resolve, reject) => {
    child!.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk;
      const match = /completions page on (http:\/\/\S+\/)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child!.once('exit', (code) => reject(new Error(`the example exited (${code}): ${stderr}`)));
  });
}

beforeAll(async () => {
  url = await startExample();
  const executablePath = whichProgram('chromium');
  if (!executablePath) throw new Error('chromium is missing: test/support/systemPackages.ts installs it');
  browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  child?.kill('SIGKILL');
});

async function openPage(key: string): Promise<Page> {
  const page = await browser!.newPage();
  await page.goto(url);
  await page.fill('#key', key);
  return page;
}

describe('the WebSocket completion page in Chromium', () => {
  it('streams a completion: the text arrives in pieces, then the job succeeds', async () => {
    const page = await openPage(KEY);
    await page.fill('#prompt', 'Hello from Chromium');
    await page.click('#start');
    // Part of the answer is on the page while the stream is still running.
    await page.waitForFunction(() => {
      const text = document.getElementById('output')!.textContent ?? '';
      return text.length > 0 && document.getElementById('status')!.textContent === 'streaming';
    });
    await page.waitForFunction(() => document.getElementById('status')!.textContent === 'succeeded', null, {
      timeout: 30_000,
    });
    const output = await page.textContent('#output');
    expect(output).toMatch(/^You asked: "Hello from Chromium"\. This answer streams over a WebSocket/);
    expect(output).toMatch(/before it ends\.$/);
    await page.close();
  }, 60_000);

  it('cancels a completion part-way from the page', async () => {
    const page = await openPage(KEY);
    await page.click('#start');
    await page.waitForFunction(() => (document.getElementById('output')!.textContent ?? '').length >= 12);
    await page.click('#cancel');
    await page.waitForFunction(() => document.getElementById('status')!.textContent === 'cancelled', null, {
      timeout: 30_000,
    });
    const output = (await page.textContent('#output')) ?? '';
    expect(output.length).toBeGreaterThan(0);
    expect(output).not.toMatch(/before it ends\.$/);
    await page.close();
  }, 60_000);

  it('shows the refusal when the key is wrong', async () => {
    const page = await openPage('not-the-key-0123456789');
    await page.click('#start');
    await page.waitForFunction(() =>
      (document.getElementById('status')!.textContent ?? '').startsWith('error'),
    );
    expect(await page.textContent('#status')).toMatch(/refused/);
    expect(await page.textContent('#output')).toBe('');
    await page.close();
  }, 60_000);
});
