/** mcpkit's Node entry: node:http listener, stdio, WebSocket, and the Node request bridge. */
export { toNodeListener, toWebRequest, writeWebResponse } from './bridge.js';
export {
  BEARER_SUBPROTOCOL_PREFIX,
  COMPLETIONS_SUBPROTOCOL,
  type CompletionSocket,
  type CompletionSocketOptions,
  type CompletionSocketPeer,
  type CompletionWebSocket,
} from './completionSocket.js';
export { nodeDnsResolver } from './dns.js';
export {
  type FileIntegrationStore,
  type FileIntegrationStoreOptions,
  type FileIntegrationsOptions,
  openFileIntegrationStore,
  openFileIntegrations,
} from './fileStore.js';
export {
  createIsolation,
  Isolation,
  type IsolationOptions,
  isolatedTool,
  type WorkerPriority,
} from './isolation/isolation.js';
export type {
  IsolatedCaller,
  IsolatedClientLog,
  IsolatedContext,
  IsolatedHandler,
  IsolatedLogger,
  IsolatedToolDefinition,
  IsolateOptions,
  IsolationFault,
  IsolationLevel,
  IsolationStats,
  ProcessPermissions,
} from './isolation/types.js';
export { type Listening, type ListenOptions, listen } from './listen.js';
export {
  createAesGcmCipher,
  type LoadSecretCipherOptions,
  loadSecretCipher,
  parseSecretKey,
} from './secrets.js';
export { type ServeStdioOptions, serveStdio } from './stdio.js';
export { type StdioUpstreamOptions, stdioUpstream } from './stdioUpstream.js';
export {
  type AttachWebSocketOptions,
  attachWebSocket,
  MCP_SUBPROTOCOL,
  type ServerWebSocket,
  type ServerWebSocketData,
  type WebSocketAttachment,
  WebSocketCloseCode,
  type WebSocketCloseInfo,
  WebSocketServerTransport,
  type WebSocketServerTransportOptions,
} from './websocket.js';
export {
  WebSocketClientTransport,
  type WebSocketClientTransportOptions,
  type WebSocketConstructor,
} from './websocketClient.js';
