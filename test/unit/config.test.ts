import { describe, expect, test } from "bun:test";
import { configFromArgs, parseHostPort, resolveConfig } from "../../src/config.ts";
import { ConfigError } from "../../src/errors.ts";

describe("config", () => {
  test("defaults are the embedded single peer on loopback", () => {
    const c = resolveConfig();
    expect(c.http).toEqual({ host: "127.0.0.1", port: 7480 });
    expect(c.s3).toEqual({ host: "127.0.0.1", port: 7481 });
    expect(c.rf).toBe(3);
    expect(c.bootstrap).toEqual([]);
    expect(c.dataDir.endsWith("meshstore-data")).toBe(true);
  });

  test("flags win over environment variables, which win over defaults", () => {
    const env = { MESH_HTTP: "127.0.0.1:9000", MESH_RF: "2", MESH_BOOTSTRAP: "/ip4/127.0.0.1/tcp/1/p2p/a,/ip4/127.0.0.1/tcp/2/p2p/b" };
    const input = configFromArgs(["--http", ":0", "--dead-after", "2.5"], env);
    expect(input.http).toEqual({ host: "127.0.0.1", port: 0 });
    expect(input.rf).toBe(2);
    expect(input.bootstrap).toHaveLength(2);
    expect(input.membership?.deadAfterMs).toBe(2500);
  });

  test("--insecure-no-auth and MESH_ADMIN_KEY/SECRET", () => {
    expect(resolveConfig().auth).toBe(true);
    expect(configFromArgs(["--insecure-no-auth"], {}).auth).toBe(false);
    expect(configFromArgs([], { MESH_INSECURE_NO_AUTH: "1" }).auth).toBe(false);
    expect(configFromArgs([], { MESH_INSECURE_NO_AUTH: "0" }).auth).toBeUndefined();
    const input = configFromArgs([], { MESH_ADMIN_KEY: "MKADMIN0000000000001", MESH_ADMIN_SECRET: "a-long-enough-secret" });
    expect(resolveConfig(input).admin).toEqual({ accessKeyId: "MKADMIN0000000000001", secretAccessKey: "a-long-enough-secret" });
    expect(() => configFromArgs([], { MESH_ADMIN_KEY: "MKADMIN0000000000001" })).toThrow(/both/);
    expect(() => resolveConfig({ admin: { accessKeyId: "short", secretAccessKey: "a-long-enough-secret" } })).toThrow(ConfigError);
  });

  test("--metrics-public and --access-log, or their variables", () => {
    expect(resolveConfig().metricsPublic).toBe(false);
    expect(resolveConfig().accessLog).toBe(false);
    expect(resolveConfig(configFromArgs(["--metrics-public", "--access-log"], {}))).toMatchObject({ metricsPublic: true, accessLog: true });
    expect(resolveConfig(configFromArgs([], { MESH_METRICS_PUBLIC: "1", MESH_ACCESS_LOG: "true" }))).toMatchObject({ metricsPublic: true, accessLog: true });
    expect(resolveConfig(configFromArgs([], { MESH_METRICS_PUBLIC: "0", MESH_ACCESS_LOG: "" }))).toMatchObject({ metricsPublic: false, accessLog: false });
  });

  test("live event streams: --max-event-streams or MESH_MAX_EVENT_STREAMS, a ping every 10 s and a bounded poll by default", () => {
    expect(resolveConfig().events).toMatchObject({ maxStreams: 256, streamPingMs: 10_000, streamPollMs: 500 });
    expect(resolveConfig(configFromArgs(["--max-event-streams", "8"], {})).events.maxStreams).toBe(8);
    expect(resolveConfig(configFromArgs([], { MESH_MAX_EVENT_STREAMS: "9" })).events.maxStreams).toBe(9);
    expect(() => configFromArgs(["--max-event-streams", "0"], {})).toThrow(/--max-event-streams must be a whole number/);
    expect(() => resolveConfig({ events: { streamPollMs: 1 } })).toThrow(/poll interval/);
    expect(() => resolveConfig({ events: { streamPingMs: 0 } })).toThrow(/ping interval/);
  });

  test("bad values are ConfigErrors with plain messages", () => {
    expect(() => configFromArgs(["--nope"])).toThrow(ConfigError);
    expect(() => configFromArgs(["--rf", "zero"])).toThrow(/--rf must be a whole number/);
    expect(() => parseHostPort("localhost:99999", "--http")).toThrow(/HOST:PORT/);
    expect(() => resolveConfig({ bootstrap: ["/ip4/127.0.0.1/tcp/1"] })).toThrow(/\/p2p\//);
    expect(() => resolveConfig({ p2pListen: ["not-an-addr"] })).toThrow(/multiaddr/);
  });
});
