// Serves the demo page (web/index.html) and the reference models on 127.0.0.1:PORT.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';

const root = path.dirname(fileURLToPath(import.meta.url));
const port = Number(process.argv[2] || 8080);
const server = await serve(root, port);
console.log(`webformer demo: http://127.0.0.1:${server.address().port}/ (Ctrl-C stops)`);
