"""The list: filter as you type, facets in the sidebar, sort order."""

from __future__ import annotations

from collections import Counter

from textual.widgets import Input

from aegis_tui.tui.widgets.sidebar import Sidebar

from .conftest import DEMO_COUNT, list_lines, listing, row_names, settle, toasts, unlocked, vault_screen


async def test_typing_in_the_filter_narrows_the_list_and_escape_clears_it(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("slash")
        field = vault_screen(app).query_one("#filter", Input)
        assert field.has_focus
        await pilot.press(*"stripe")
        await pilot.pause()
        names = row_names(app)
        assert field.value == "stripe"
        assert 0 < len(names) < DEMO_COUNT
        assert {"stripe-live", "stripe-test", "stripe-webhook"} <= set(names)
        assert all("stripe" in (c.name + c.service) for c in listing(app).rows[:3])
        assert listing(app).border_title == f"{len(names)} of {DEMO_COUNT}"
        await pilot.press("enter")  # Enter moves to the list, the filter stays
        await pilot.pause()
        assert listing(app).has_focus and row_names(app) == names
        await pilot.press("escape")
        await pilot.pause()
        assert field.value == ""
        assert len(row_names(app)) == DEMO_COUNT


async def test_a_filter_matching_nothing_empties_the_list_and_the_details(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await pilot.press("slash", *"zzzqqq")
        await pilot.pause()
        assert row_names(app) == []
        assert "Nothing selected" in screen_detail(app)
        assert vault_screen(app).check_action("reveal", ()) is False


def screen_detail(app) -> str:
    from .conftest import plain

    return plain(vault_screen(app).query_one("#detail-meta"))


async def choose_facet(pilot, option_id: str) -> None:
    """Focus the sidebar with Shift+Tab, move to the option with the arrows, press Enter."""
    app = pilot.app
    sidebar = vault_screen(app).query_one(Sidebar)
    for _ in range(4):
        if sidebar.has_focus:
            break
        await pilot.press("shift+tab")
    assert sidebar.has_focus
    ids = [sidebar.get_option_at_index(i).id for i in range(sidebar.option_count)]
    assert option_id in ids
    from_end = ids.index(option_id) > len(ids) // 2
    await pilot.press("end" if from_end else "home")
    for _ in range(sidebar.option_count):
        if sidebar.highlighted is not None and sidebar.get_option_at_index(sidebar.highlighted).id == option_id:
            break
        await pilot.press("up" if from_end else "down")
    await pilot.press("enter")
    await settle(pilot, 1)


async def test_choosing_a_context_in_the_sidebar_narrows_the_list_to_it(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        expected = sorted(c.name for c in built.credentials().list() if c.context == "acme/prod")
        await choose_facet(pilot, "context:acme/prod")
        assert sorted(row_names(app)) == expected
        assert {c.context for c in listing(app).rows} == {"acme/prod"}
        assert listing(app).has_focus  # the cursor goes back to the list
        await pilot.press("escape")  # Escape clears the facet too
        await pilot.pause()
        assert len(row_names(app)) == DEMO_COUNT


async def test_a_status_facet_narrows_and_all_drops_the_facet_but_keeps_the_filter(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        await choose_facet(pilot, "health:revoked")
        assert row_names(app) == ["heroku-legacy"]
        await pilot.press("slash", *"deploy")
        await pilot.pause()
        assert row_names(app) == []  # the facet and the filter combine
        await choose_facet(pilot, "all")
        assert {"github-deploy", "aws-prod-deployer"} <= set(row_names(app))
        assert vault_screen(app).query_one("#filter", Input).value == "deploy"


async def test_sidebar_counts_match_the_vault(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app):
        sidebar = vault_screen(app).query_one(Sidebar)
        contexts = Counter(c.context for c in built.credentials().list())
        for context, count in contexts.items():
            index = sidebar.get_option_index(f"context:{context}")
            label = str(sidebar.get_option_at_index(index).prompt)
            assert label.split()[-1] == str(count), label


async def test_s_cycles_the_sort_column_and_the_header_marks_it(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        widget = listing(app)
        first = row_names(app)
        # "match" order with no query: context, then name
        assert first == [c.name for c in sorted(widget.rows, key=lambda c: (c.context, c.name.casefold()))]
        seen = []
        for _ in range(7):
            await pilot.press("s")
            await pilot.pause()
            seen.append(widget.sort_key)
            if widget.sort_key == "name":
                names = row_names(app)
                assert names == sorted(names, key=str.casefold)
                assert "NAME ▲" in list_lines(widget)[0]
                assert any("sorted by name" in t for t in toasts(app))
            if widget.sort_key == "service":  # the column is hidden at this width; the toast says it
                services = [c.service for c in widget.rows]
                assert services == sorted(services, key=str.casefold)
                assert any("sorted by service" in t for t in toasts(app))
            if widget.sort_key == "context":
                contexts = [c.context for c in widget.rows]
                assert contexts == sorted(contexts, key=str.casefold)
                assert "CONTEXT ▲" in list_lines(widget)[0]
        assert seen == ["name", "context", "service", "health", "rotation", "used", "match"]
        assert row_names(app) == first
        assert len(first) == DEMO_COUNT


async def test_clicking_a_row_selects_that_row_and_clicking_a_column_title_sorts_by_it(make_app):
    built = make_app()
    app = built.app
    async with unlocked(app) as pilot:
        widget = listing(app)
        names = row_names(app)
        await pilot.click(widget, offset=(4, 2 + 3))  # border, header, then the fourth row
        await pilot.pause()
        assert widget.current.name == names[3]
        header = list_lines(widget)[0]
        await pilot.click(widget, offset=(1 + header.index("CONTEXT") + 1, 1))
        await pilot.pause()
        assert widget.sort_key == "context"
        assert widget.current.name == names[3]  # the cursor stays on the same credential
        await pilot.click(widget, offset=(1 + header.index("NAME") + 1, 1))
        await pilot.pause()
        assert widget.sort_key == "name"
        assert row_names(app) == sorted(names, key=str.casefold)
