// Bench only: preloaded into baseline peers (`bun --preload bench/without-mesh-key.ts ...`),
// it swaps the mesh-key protector for one that passes bytes through untouched, so the
// cost of the key can be measured on the same code in the same run. meshstore itself has
// no way to run without the key; this file is never imported by src/.
import { plugin } from "bun";

plugin({
  name: "bench: mesh without the key's encryption",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]net[\\/]protector\.ts$/ }, () => ({
      loader: "ts",
      contents: "export function meshKeyProtector() { return () => ({ protect: async (connection: unknown) => connection }); }",
    }));
  },
});
