import { config } from "@coyote/eslint-config";

export default config(import.meta.dirname);
