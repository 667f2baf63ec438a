/** mcpkit's Node entry: node:http listener, stdio, and the Node request bridge. */
export { toNodeListener, toWebRequest, writeWebResponse } from './bridge.js';
export { nodeDnsResolver } from './dns.js';
export { type Listening, type ListenOptions, listen } from './listen.js';
export { type ServeStdioOptions, serveStdio } from './stdio.js';
