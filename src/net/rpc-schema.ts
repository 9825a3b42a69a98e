// Schema pieces that several RPC contracts share (each module declares its own methods'
// params beside their handlers; see Rpc.register).
import { Type } from "@sinclair/typebox";

/** A libp2p peer id as meshstore prints them (base58btc; Ed25519 ids are 52 characters). */
export const PeerIdSchema = Type.String({ pattern: "^[1-9A-HJ-NP-Za-km-z]{1,128}$" });
