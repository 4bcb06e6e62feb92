// Serves the demo app (www/app) and the built package (pkg/, under /pkg/) on a local
// port of its own, a different origin than the portal, as production apps are hosted.
// GET and POST both answer with the app, since a portal opens apps with a POST.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';

const defaultPkg = new URL('../pkg/', import.meta.url);
const app = new URL('./app/', import.meta.url);
const types = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.json': 'application/json' };

/**
 * Starts the server on `port` (0: a free one) and resolves to its origin. `pkgDir` is
 * the package folder served under /pkg/ (default: the build output, pkg/).
 */
export async function serveDemo(port = 0, pkgDir = defaultPkg) {
  const roots = { '/pkg/': pkgDir, '/': app };
  const server = createServer(async (req, res) => {
    req.resume();
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const prefix = path.startsWith('/pkg/') ? '/pkg/' : '/';
    const file = path.slice(prefix.length) || 'index.html';
    if (file.includes('..')) return res.writeHead(400).end();
    try {
      const body = await readFile(new URL(file, roots[prefix]));
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { origin: `http://localhost:${server.address().port}`, close: () => server.close() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { origin } = await serveDemo(Number(process.env.PORT ?? 0));
  console.log(`demo app at ${origin}/`);
}
