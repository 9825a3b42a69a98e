// Free ports for tests that must name a port before a server starts.
import net from "node:net";

/** A TCP port that was free a moment ago (for a peer that must listen behind a relay). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
