import { describe, expect, test } from "bun:test";
import { advertisedUrl } from "../../src/api/advertise.ts";
import { isLoopbackAddr, reachableAddrs } from "../../src/net/addresses.ts";

const ID = "12D3KooWJbX9bjxqYp2wK8nFYcFJbZxXHdAqZhuzYmY1cQyQ4m5t";
const lan = `/ip4/10.213.77.3/tcp/7400/p2p/${ID}`;
const loop = `/ip4/127.0.0.1/tcp/7400/p2p/${ID}`;
const loop6 = `/ip6/::1/tcp/7400/p2p/${ID}`;

describe("addresses other hosts can use", () => {
  test("loopback addresses are dropped when a peer has any other, and kept on a one-host mesh", () => {
    expect(isLoopbackAddr(loop)).toBe(true);
    expect(isLoopbackAddr("/ip4/127.8.9.1/tcp/1")).toBe(true);
    expect(isLoopbackAddr(loop6)).toBe(true);
    expect(isLoopbackAddr(lan)).toBe(false);
    expect(reachableAddrs([loop, lan, loop6])).toEqual([lan]);
    expect(reachableAddrs([loop, loop6])).toEqual([loop, loop6]);
    expect(reachableAddrs([])).toEqual([]);
  });

  test("a wildcard bind advertises the host others reach the peer on; an explicit URL wins", () => {
    expect(advertisedUrl(undefined, "0.0.0.0", 7480, [loop, lan])).toBe("http://10.213.77.3:7480");
    expect(advertisedUrl(undefined, "0.0.0.0", 7480, [loop])).toBe("http://127.0.0.1:7480");
    expect(advertisedUrl(undefined, "::", 7481, [`/ip6/fd00::5/tcp/7400/p2p/${ID}`, loop6])).toBe("http://[fd00::5]:7481");
    expect(advertisedUrl(undefined, "192.168.7.7", 7480, [lan])).toBe("http://192.168.7.7:7480");
    expect(advertisedUrl("https://store.example/", "0.0.0.0", 7480, [lan])).toBe("https://store.example");
  });
});
