// A local HTTP server for loading tests: serves byte arrays by path with Range support (or without,
// to play an old server), counts requests, and 404s everything else.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestServer {
  url(path: string): string;
  /** Requests seen, by path: how many and how many asked for a Range. */
  requests: Map<string, { count: number; ranged: number }>;
  close(): Promise<void>;
}

export async function serveFiles(files: Record<string, Uint8Array>, options: { ranges?: boolean } = {}): Promise<TestServer> {
  const requests = new Map<string, { count: number; ranged: number }>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, 'http://x').pathname;
    const seen = requests.get(path) ?? { count: 0, ranged: 0 };
    seen.count++;
    requests.set(path, seen);
    const body = files[path];
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-(\d*)$/);
    if (range && options.ranges !== false) {
      seen.ranged++;
      const start = Number(range[1]);
      const end = Math.min(range[2] ? Number(range[2]) : body.length - 1, body.length - 1);
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1, 'accept-ranges': 'bytes' });
      res.end(body.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
