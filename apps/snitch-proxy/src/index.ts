/**
 * `@coyote/snitch-proxy`: the TLS front door (docs/ARCHITECTURE.md). {@link startProxy} runs it; the
 * component definition is what `coyote up` starts.
 */
export { startProxy, type ProxyOptions, type RunningProxy, type Listen } from "./proxy.ts";
export { certificateFile, CertificateStore } from "./certs.ts";
export { SNITCH_PROXY_ERRORS, SnitchProxyError, type SnitchProxyErrorCode } from "./errors.ts";
export { RouteTable, RouteSource } from "./routes.ts";
export { TrafficStats, LATENCY_BUCKETS_MS } from "./stats.ts";
export { component, defaultWorkers, SNITCH_PROXY_NODE_FLAGS, startSnitchProxy } from "./component.ts";
export { startProxyCluster, type ClusterOptions, type RunningCluster } from "./cluster.ts";
export { Origins, OriginError, type OriginHandler, type OriginRequest, type OriginCall } from "./http1/origin.ts";
