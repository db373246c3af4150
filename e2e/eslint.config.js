import { config } from "@coyote/eslint-config";

// test-output/ holds the run's results and the test appliance's state folder, never sources.
export default [{ ignores: ["test-output/**"] }, ...config(import.meta.dirname)];
