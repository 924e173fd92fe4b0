// A static file server on 127.0.0.1 for the demo page and the browser tests: a root folder
// plus the reference models (/models/smollm2.gguf from WEBFORMER_GGUF, /models/minilm/...
// from WEBFORMER_MINILM) and /expected.json (WEBFORMER_EXPECTED). 127.0.0.1 is a secure
// context, which WebGPU requires. Paths that leave a mount are refused.

import http from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/** Chromium's flags for WebGPU without a GPU (NOTES.md section 3): --enable-unsafe-webgpu lets
 * the SwiftShader CPU adapter through. */
export const FLAGS = [
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The file a request path names: a mounted model file, or one under ROOT; null if neither. */
function resolve(ROOT, rel) {
  const gguf = process.env.WEBFORMER_GGUF;
  const minilm = process.env.WEBFORMER_MINILM;
  const expected = process.env.WEBFORMER_EXPECTED;
  if (rel === '/models/smollm2.gguf' && gguf) return gguf;
  if (rel === '/expected.json' && expected) return expected;
  if (rel.startsWith('/models/minilm/') && minilm) {
    const file = path.resolve(minilm, '.' + rel.slice('/models/minilm'.length));
    return file.startsWith(path.resolve(minilm) + path.sep) ? file : null;
  }
  const file = path.resolve(ROOT, '.' + rel);
  return file.startsWith(ROOT + path.sep) ? file : null;
}

/** Serves ROOT and the mounts on 127.0.0.1:port (0: a free port); resolves to the server. */
export function serve(ROOT, port = 0) {
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://localhost');
      let rel = decodeURIComponent(url.pathname);
      if (rel.endsWith('/')) rel += 'index.html';
      const file = resolve(ROOT, rel);
      if (!file) {
        res.writeHead(403).end('forbidden');
        return;
      }
      if (!(await stat(file)).isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      const body = await readFile(file);
      res.writeHead(200, {
        'content-type': MIME[path.extname(file)] || 'application/octet-stream',
        'cache-control': 'no-store',
      });
      res.end(body);
    } catch (e) {
      const missing = e.code === 'ENOENT' || e.code === 'ENOTDIR';
      res.writeHead(missing ? 404 : 500).end(missing ? 'not found' : String(e));
      if (!missing) console.error(`[server] ${req.url}: ${e}`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

