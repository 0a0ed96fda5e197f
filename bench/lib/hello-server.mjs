// The baseline of `npm run bench`: the smallest node:http server there is, run as its own process
// so that it never shares an event loop with the load generator. It prints its port on stdout.
import http from "node:http";

const body = Buffer.from('{"hello":"world"}');
const server = http.createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
  res.end(body);
});
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
