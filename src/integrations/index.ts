/** Integrations: the runtime-neutral core (manager, types, validation, stores, cipher format). */
export type {
  ExportSecrets,
  ExportSecretsMode,
  ImportConflictPolicy,
  ImportIssue,
  IntegrationExport,
  IntegrationExportOptions,
  IntegrationImportOptions,
  IntegrationImportReport,
} from './backup.js';
export {
  createEphemeralCipher,
  KEY_CHECK_AAD,
  parseSealed,
  SEALED_PREFIX,
  secretAad,
} from './cipher.js';
export {
  type AttachedTool,
  type AttachedUpstream,
  IntegrationManager,
  type IntegrationManagerOptions,
  type IntegrationWriteOptions,
  integrationResourceUri,
  namespacedName,
} from './manager.js';
export {
  createMemoryIntegrationStore,
  fromDocument,
  IntegrationStoreError,
  MIGRATIONS,
  STORE_FORMAT,
  STORE_VERSION,
  type StoredDocument,
  toDocument,
} from './store.js';
export type {
  Integration,
  IntegrationEvent,
  IntegrationEvents,
  IntegrationInput,
  IntegrationPromptSpec,
  IntegrationRecordWrite,
  IntegrationResourceSpec,
  IntegrationSnapshot,
  IntegrationStore,
  IntegrationType,
  ModelConfig,
  ModelProvider,
  SecretCipher,
  SharedIntegrationStore,
  StoredIntegration,
} from './types.js';
export type {
  UpstreamLimits,
  UpstreamSource,
  UpstreamSpec,
  UpstreamState,
  UpstreamStatus,
} from './upstreamTypes.js';
export { INTEGRATION_ID, maskSecret, NAMESPACE_SEPARATOR, validateIntegrationInput } from './validation.js';
