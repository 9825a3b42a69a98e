// The connection protector of a private mesh: every p2p connection is XSalsa20-encrypted
// with the mesh key before noise even starts, so a node without the key cannot complete
// a handshake, let alone call anything. Wire-compatible with @libp2p/pnet (each side
// sends a random 24-byte nonce; each direction is XSalsa20(key, sender's nonce)), but
// the keystream comes from libsodium: @libp2p/pnet's own XSalsa20 halves link speed
// under Bun, libsodium's runs at over 1 GB/s here.
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from "@libp2p/interface";
import { AbstractMultiaddrConnection, byteStream } from "@libp2p/utils";
import type { AbstractMultiaddrConnectionInit } from "@libp2p/utils";
import sodium from "sodium-native";
import type { Uint8ArrayList } from "uint8arraylist";

const NONCE_BYTES = 24;

/** sodium-native's streaming XSalsa20 (crypto_stream_xor_*), which @types/sodium-native does not declare. */
const xsalsa20 = sodium as unknown as {
  crypto_stream_xor_STATEBYTES: number;
  crypto_stream_xor_init(state: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  crypto_stream_xor_update(state: Uint8Array, out: Uint8Array, data: Uint8Array): void;
};
/** The nonce exchange is the first thing on a connection; a peer that says nothing is dropped. */
const HANDSHAKE_TIMEOUT_MS = 5000;

/** XSalsa20 keystream state for one direction of one connection. */
class Keystream {
  private readonly state = Buffer.alloc(xsalsa20.crypto_stream_xor_STATEBYTES);

  constructor(nonce: Uint8Array, key: Uint8Array) {
    xsalsa20.crypto_stream_xor_init(this.state, nonce, key);
  }

  /** XOR `data` with the next bytes of the keystream into `out` (which may be `data` itself). */
  apply(data: Uint8Array, out: Uint8Array = data): Uint8Array {
    xsalsa20.crypto_stream_xor_update(this.state, out, data);
    return out;
  }
}

interface BoxInit extends AbstractMultiaddrConnectionInit {
  inner: MultiaddrConnection;
  inbound: Keystream;
  outbound: Keystream;
}

/** A connection whose bytes are XORed with each direction's keystream. */
class BoxedConnection extends AbstractMultiaddrConnection {
  private readonly inner: MultiaddrConnection;
  private readonly outbound: Keystream;

  constructor(init: BoxInit) {
    super(init);
    this.inner = init.inner;
    this.outbound = init.outbound;
    this.inner.addEventListener("message", (evt) => {
      const data = evt.data as Uint8Array | Uint8ArrayList;
      // Received bytes are ours alone: decrypt them where they lie. (Sent bytes may be the
      // caller's own buffer, a chunk still in use, so they are encrypted into a copy.)
      if (data instanceof Uint8Array) this.onData(init.inbound.apply(data));
      else for (const piece of data) this.onData(init.inbound.apply(piece));
    });
    this.inner.addEventListener("drain", () => this.onMuxerDrain());
    this.inner.addEventListener("close", (evt) => {
      if (evt.error != null) {
        if (evt.local) this.abort(evt.error);
        else this.onRemoteReset();
      } else this.onTransportClosed();
    });
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.inner.close(options);
  }

  sendData(data: Uint8ArrayList) {
    // Encrypted piece by piece into one new buffer: joining the pieces first would copy twice.
    const out = Buffer.allocUnsafe(data.byteLength);
    let offset = 0;
    for (const piece of data) {
      this.outbound.apply(piece, out.subarray(offset, offset + piece.byteLength));
      offset += piece.byteLength;
    }
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(out) };
  }

  sendReset(err: Error): void {
    this.inner.abort(err);
  }

  sendPause(): void {
    this.inner.pause();
  }

  sendResume(): void {
    this.inner.resume();
  }
}

class MeshKeyProtector implements ConnectionProtector {
  constructor(
    private readonly psk: Uint8Array,
    private readonly onNonce?: (connection: MessageStream) => void,
  ) {}

  async protect(connection: MessageStream, options?: AbortOptions): Promise<MessageStream> {
    const signal = options?.signal ?? AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS);
    const localNonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
    const bytes = byteStream(connection as MultiaddrConnection);
    const [remote] = await Promise.all([bytes.read({ bytes: NONCE_BYTES, signal }), bytes.write(localNonce, { signal })]);
    this.onNonce?.(connection);
    const inner = bytes.unwrap() as MultiaddrConnection;
    return new BoxedConnection({
      inner,
      remoteAddr: inner.remoteAddr,
      direction: inner.direction,
      log: inner.log.newScope("mesh-key"),
      inbound: new Keystream(remote.subarray(), this.psk),
      outbound: new Keystream(localNonce, this.psk),
    });
  }
}

/** A libp2p connection protector for the mesh key's 32 bytes; `onNonce` hears of each connection whose remote sent its nonce. */
export function meshKeyProtector(psk: Uint8Array, onNonce?: (connection: MessageStream) => void): () => ConnectionProtector {
  return () => new MeshKeyProtector(psk, onNonce);
}
