/** The warning of a box that no buddy watches (the overview and the buddies page show it). */
export function NoBuddyWarning() {
  return (
    <p className="notice warn" role="status">
      No buddy server watches this box: if it goes down, nobody raises an alarm and nobody takes over its services. <a href="/admin/buddies">Add a buddy</a>.
    </p>
  );
}
