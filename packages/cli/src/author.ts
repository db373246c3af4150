import { userInfo, hostname } from "node:os";
import { CliError, EXIT } from "./errors.ts";

/** The person (or program) a spec change is recorded under in the specs history. */
export interface Author {
  /** The name. */
  readonly name: string;
  /** The e-mail address. */
  readonly email: string;
}

/**
 * Parses `Name <email>`.
 * @throws CliError (usage) when the text is not of that form.
 */
export function parseAuthor(text: string): Author {
  const match = /^\s*([^<>]+?)\s*<([^<>\s]+@[^<>\s]+)>\s*$/.exec(text);
  if (!match?.[1] || !match[2]) throw new CliError(`--author: expected "Name <email>", got ${JSON.stringify(text)}`, EXIT.USAGE);
  return { name: match[1], email: match[2] };
}

/** The author for a change: the `--author` option, else `COYOTE_AUTHOR`, else the login user at this host. */
export function chooseAuthor(option: string | undefined, fromEnv: string | undefined): Author {
  if (option !== undefined) return parseAuthor(option);
  if (fromEnv !== undefined && fromEnv !== "") return parseAuthor(fromEnv);
  const user = userInfo().username;
  return { name: user, email: `${user}@${hostname()}` };
}
