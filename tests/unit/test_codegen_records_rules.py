"""Record detection on shapes real sites use: one-field lists, plain tables, embedded JSON."""

from __future__ import annotations

import json

from fetcher_codegen.records import html_records, json_records


def test_a_one_field_json_list_is_a_list_of_records() -> None:
    found = json_records({"count": 3, "ids": [{"id": "a1"}, {"id": "b2"}, {"id": "c3"}]})
    assert found is not None
    assert found.path == "ids"
    assert [item["id"] for item in found.items] == ["a1", "b2", "c3"]


def test_the_richer_list_wins_over_a_one_field_list() -> None:
    data = {
        "tags": [{"t": "x"}, {"t": "y"}],
        "reports": [{"report": "r1", "size": 1}, {"report": "r2", "size": 2}],
    }
    found = json_records(data)
    assert found is not None and found.path == "reports"


def test_two_column_table_cells_are_keyed_by_position() -> None:
    rows = "".join(f"<tr><td>R-{n}</td><td>2026-01-0{n}</td></tr>" for n in range(1, 5))
    found = html_records(f"<html><body><table><tbody>{rows}</tbody></table></body></html>")
    assert found is not None and found.count == 4
    first = found.items[0]
    assert sorted(first.values()) == ["2026-01-01", "R-1"]
    assert len(first) == 2  # both cells kept: siblings alike do not collapse onto one key


def test_a_one_value_list_of_items_is_records() -> None:
    items = "".join(f"<li>report-{n}</li>" for n in range(5))
    found = html_records(f"<html><body><h1>Reports</h1><ul>{items}</ul></body></html>")
    assert found is not None
    assert [list(item.values()) for item in found.items] == [[f"report-{n}"] for n in range(5)]


def test_json_in_a_script_tag_is_read_when_it_holds_the_records() -> None:
    payload = {"props": {"offers": [{"sku": f"S{n}", "price": n} for n in range(6)]}}
    page = (
        "<html><body><div class='menu'><a href='/a'>A</a></div>"
        f"<script id='data' type=\"application/json\">{json.dumps(payload)}</script>"
        "</body></html>"
    )
    found = html_records(page)
    assert found is not None and found.count == 6
    assert found.items[0]["sku"] == "S0"
    assert "props.offers" in found.path


def test_json_assigned_in_an_inline_script_is_read() -> None:
    state = {"catalog": {"products": [{"sku": f"S{i}", "name": f"n{i}"} for i in range(9)]}}
    page = (
        "<html><body><div id=app><p>loading</p></div>"
        f"<script>window.__INITIAL_STATE__ = {json.dumps(state)};</script></body></html>"
    )
    found = html_records(page)
    assert found is not None and found.count == 9 and found.items[0]["sku"] == "S0"
    # `var x = [...]` works too; a JavaScript literal that is not JSON, or a script file, not
    rows = [{"id": i, "t": "x"} for i in range(4)]
    assigned = html_records(f"<script>var rows = {json.dumps(rows)}</script>")
    assert assigned is not None and assigned.count == 4
    assert html_records("<script>var rows = [{id: 1, t: 'x'}, {id: 2, t: 'y'}]</script>") is None
    src = f'<script src="/app.js">var rows = {json.dumps(rows)}</script>'
    assert html_records(src) is None
