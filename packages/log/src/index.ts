// @coyote/log: structured events with one vocabulary across all of Coyote's components, request
// ids that follow a request between them, and the timeline that merges every component's log.
export { EVENTS, EVENT_DESCRIPTIONS, assertEventName, isEventName } from "./events.ts";
export { codedErrors } from "./coded-error.ts";
export type { CodedError, CodedErrorClass, CodedErrorOptions, ErrorCatalogue, ErrorEntry, ErrorStatus } from "./coded-error.ts";
export { errorText } from "./error-text.ts";
export type { EventName } from "./events.ts";
export { clockNow, createLogger, logFileFor } from "./logger.ts";
export { REDACTED, SECRET_KEY_PATTERN, redactSecrets } from "./redact.ts";
export type { CoyoteLogger, LogLevel, LoggerOptions } from "./logger.ts";
export { REQUEST_ID_HEADER, isRequestId, newRequestId, requestIdFrom } from "./request-id.ts";
export { compareRecords, formatTime, formatTimeline, logFilesIn, mergeTimeline, readLogFile } from "./timeline.ts";
export type { FormatOptions, LogRecord, Timeline, TimelineFilter } from "./timeline.ts";
