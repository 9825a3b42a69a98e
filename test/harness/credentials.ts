// The admin key every test peer is started with (as MESH_ADMIN_KEY / MESH_ADMIN_SECRET
// would set it), its native-API token, and an S3 client factory for the SDK tests.
import { nativeToken } from "../../src/auth/access-keys.ts";
import { suiteLeaks } from "./leak-check.ts";

/** The test mesh's admin key. */
export const TEST_ADMIN = { accessKeyId: "MKTESTADMIN000000001", secretAccessKey: "test-admin-secret-0123456789abcdef" } as const;

/** `Authorization` header value for the native API as the admin. */
export const ADMIN_BEARER = `Bearer ${nativeToken(TEST_ADMIN.accessKeyId, TEST_ADMIN.secretAccessKey)}`;
suiteLeaks.registerKey(TEST_ADMIN, true);

/** Environment for `bun run node` processes so they share the test admin key. */
export const ADMIN_ENV = { MESH_ADMIN_KEY: TEST_ADMIN.accessKeyId, MESH_ADMIN_SECRET: TEST_ADMIN.secretAccessKey };
