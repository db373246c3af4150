import { logout } from "../app/logout/actions.ts";

/** The sign-out button (a form, so that it carries the CSRF field and works without JavaScript). */
export function SignOut({ csrf }: { csrf: string }) {
  return (
    <form action={logout} className="inline">
      <input type="hidden" name="csrf" value={csrf} />
      <button type="submit" className="link">
        Sign out
      </button>
    </form>
  );
}
