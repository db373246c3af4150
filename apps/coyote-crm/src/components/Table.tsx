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

/** One column of a {@link ColumnTable}: its header and what each row shows under it. */
export interface Column<T> {
  readonly header: ReactNode;
  readonly cell: (item: T) => ReactNode;
}

/**
 * A {@link Table} described by its columns, each with the cell it shows for an item, so that lists
 * sharing some columns (raised and cleared alarms, pending and decided requests) define those
 * once. Each row is keyed by `rowKey` and carries the `data-*` attributes of `rowData`, by which
 * pages and tests find a row.
 */
export function ColumnTable<T>({ columns, items, empty, rowKey, rowData }: {
  columns: readonly Column<T>[];
  items: readonly T[];
  empty?: ReactNode;
  rowKey: (item: T) => string;
  rowData?: (item: T) => Readonly<Record<`data-${string}`, string>>;
}) {
  return (
    <Table
      columns={columns.map((column) => column.header)}
      items={items}
      empty={empty}
      row={(item) => (
        <tr key={rowKey(item)} {...rowData?.(item)}>
          {columns.map((column, i) => (
            <td key={i}>{column.cell(item)}</td>
          ))}
        </tr>
      )}
    />
  );
}
