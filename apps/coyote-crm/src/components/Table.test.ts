import assert from "node:assert/strict";
import { test } from "node:test";
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { ColumnTable, type Column } from "./Table.tsx";

interface Item {
  readonly id: string;
  readonly size: number;
}

const COLUMNS: readonly Column<Item>[] = [
  { header: "Id", cell: (item) => item.id },
  { header: "Size", cell: (item) => createElement("code", null, item.size) },
];

test("a column table shows each column's header and cell, with each row's data attributes", () => {
  const html = renderToStaticMarkup(createElement(ColumnTable<Item>, { columns: COLUMNS, items: [{ id: "a", size: 1 }, { id: "b", size: 2 }], rowKey: (item) => item.id, rowData: (item) => ({ "data-item": item.id }), empty: "None." }));
  assert.equal(
    html,
    '<table><thead><tr><th scope="col">Id</th><th scope="col">Size</th></tr></thead><tbody>'
      + '<tr data-item="a"><td>a</td><td><code>1</code></td></tr><tr data-item="b"><td>b</td><td><code>2</code></td></tr></tbody></table>',
  );
  assert.equal(renderToStaticMarkup(createElement(ColumnTable<Item>, { columns: COLUMNS, items: [], rowKey: (item) => item.id, empty: "None." })), '<p class="muted">None.</p>');
});
