import type { ReactNode } from "react";

/**
 * A list shown as a table: a header row of `columns`, then `row` for each item; or, when there are
 * no items, `empty` instead (a sentence becomes a muted paragraph, anything else shows as it is).
 * The admin panel and the shop list everything this way.
 */
export function Table<T>({ columns, items, row, empty }: { columns: readonly ReactNode[]; items: readonly T[]; row: (item: T) => ReactNode; empty?: ReactNode }) {
  if (items.length === 0) return typeof empty === "string" ? <p className="muted">{empty}</p> : <>{empty}</>;
  return (
    <table>
      <thead>
        <tr>
          {columns.map((column, i) => (
            <th scope="col" key={i}>
              {column}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{items.map(row)}</tbody>
    </table>
  );
}
