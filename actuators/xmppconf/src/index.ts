/**
 * `@coyote/actuator-xmppconf`: the Prosody actuator (DESIGN.md, "actuators"; issue #3). It gives
 * every domain of a service with an `xmpp` section a VirtualHost and every user of `xmpp.users`
 * an account in Prosody's `internal_hashed` store. The SRV records are published by dnsconf.
 *
 * Other packages use {@link scramSha1Credentials} (the web panel makes the one stored credential
 * that serves both mail and XMPP with it) and the path helpers.
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
export {
  accountFile,
  accountsDir,
  decodeDataPathPart,
  DEFAULT_PROSODY_MODULES,
  encodeDataPathPart,
  HOST_FILE_SUFFIX,
  HOSTS_DIR,
  luaString,
  MAIN_CONFIG_FILE,
  parseHostFile,
  renderAccount,
  renderHostConfig,
  renderMainConfig,
  type MainConfigInput,
  type ParsedHostFile,
} from "./render.ts";
export {
  deriveScramSha1,
  formatScramSha1,
  parseScramSha1,
  passwordHashScheme,
  saslprep,
  SCRAM_MAX_ITERATIONS,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_MIN_ITERATIONS,
  SCRAM_SHA1_SCHEME,
  scramSha1Credentials,
  type ScramParseProblem,
  type ScramSha1Credential,
} from "./scram.ts";
