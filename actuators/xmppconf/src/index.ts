/**
 * `@coyote/actuator-xmppconf`: the Prosody actuator. It gives
 * every domain of a service with an `xmpp` section a VirtualHost and every user of `xmpp.users`
 * an account in Prosody's `internal_hashed` store. The SRV records are published by dnsconf.
 *
 * The SCRAM credentials it stores live in `@coyote/spec` (the web panel makes the one stored
 * credential that serves both mail and XMPP with them); they are re-exported here.
 */
export {
  createXmppActuator,
  XMPP_ACTUATOR_ID,
  XMPP_CONDITION,
  type ObservedAccount,
  type ObservedHostFile,
  type XmppActuator,
  type XmppActuatorOptions,
  type XmppObserved,
  type XmppStep,
} from "./actuator.ts";
export { CONSOLE_LOG, DEFAULT_HTTP_PORT, prosodyFileOwner } from "./files.ts";
export {
  accountFile,
  accountsDir,
  decodeDataPathPart,
  DEFAULT_PROSODY_MODULES,
  DISABLED_SASL_MECHANISMS,
  encodeDataPathPart,
  DEFAULT_FILE_SIZE_LIMIT_MB,
  FILE_SHARE_EXPIRES_AFTER_SECONDS,
  groupChatHost,
  HTTP_INTERFACE,
  MAX_FILE_SIZE_LIMIT_MB,
  uploadHost,
  HOST_FILE_SUFFIX,
  HOSTS_DIR,
  luaString,
  MAIN_CONFIG_FILE,
  parseHostFile,
  renderAccount,
  renderHostConfig,
  renderMainConfig,
  type HostOptions,
  type MainConfigInput,
  type ParsedHostFile,
} from "./render.ts";
export {
  deriveScram,
  deriveScramSha1,
  formatScram,
  formatScramSha1,
  parseScram,
  parseScramSha1,
  passwordHashScheme,
  saslprep,
  SCRAM_MAX_ITERATIONS,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  SCRAM_SHA1_SCHEME,
  SCRAM_SHA256_DEFAULT_ITERATIONS,
  SCRAM_SHA256_SCHEME,
  scramCredentials,
  scramHashFor,
  scramSha1Credentials,
  scramSha256Credentials,
  type ScramCredential,
  type ScramHash,
  type ScramParseProblem,
  type ScramParseResult,
  type ScramSha1Credential,
} from "@coyote/spec";
