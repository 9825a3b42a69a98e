// Embedding API: start a peer in-process with the same config as `bun run node`.
export { startPeer, type Peer, type PeerInfo, type PeerView, type ClusterStatus, type PeerTestHooks } from "./peer.ts";
export { resolveConfig, configFromArgs, DEFAULTS, DEFAULT_MEMBERSHIP, DEFAULT_LIMITS, type PeerConfig, type PeerConfigInput, type MembershipConfig, type LimitsConfig } from "./config.ts";
export { MeshError, ConfigError } from "./errors.ts";
