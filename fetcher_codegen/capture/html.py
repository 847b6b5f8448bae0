"""Exploring HTML pages: fetch feed and file links, submit a search form that shows no results
yet, click "next", scroll, and follow links that look like data pages when nothing was found."""

from __future__ import annotations

from urllib.parse import urlsplit

from fetcher_codegen.capture.browsing import Browsing
from fetcher_codegen.capture_scripts import (
    DATA_LINKS_JS,
    FIND_NEXT_JS,
    FIND_SEARCH_FORM_JS,
    next_selector,
)
from fetcher_codegen.har import Entry
from fetcher_codegen.probes import data_link_score
from fetcher_codegen.records import find_records


class HtmlExplorer(Browsing):
    def explore_html(self) -> None:
        self.follow_data_links()
        if not self.data_seen():
            self.submit_search_form()
        self.click_next()
        self.scroll()
        if not self.data_seen():
            self.follow_hub_links()

    def follow_data_links(self) -> int:
        from playwright.sync_api import Error as PlaywrightError

        try:
            links = self.page.evaluate(DATA_LINKS_JS)
        except PlaywrightError:
            return 0
        wanted = []
        for link in links:
            href = str(link.get("href", ""))
            if not href.startswith(("http://", "https://")):
                continue
            if (
                link.get("feed")
                or link.get("download")
                or data_link_score(href, str(link.get("text", ""))) == 2
            ):
                wanted.append(href.split("#")[0])
        wanted = list(dict.fromkeys(wanted))[: self.limits.max_follow_links]
        for href in wanted:
            if self.time_left() <= 0:
                break
            self.fetch(href)
        if wanted:
            self.step("follow links", f"fetched {len(wanted)} feed/file links")
        return len(wanted)

    def submit_search_form(self) -> None:
        """A page with a search or filter form and no records yet: submit it with the defaults
        the page gives, as a person asking for "everything" would (GET forms only)."""
        from playwright.sync_api import Error as PlaywrightError

        try:
            found = self.page.evaluate(FIND_SEARCH_FORM_JS)
            if not found:
                return
            self.page.locator("[data-amazoniax-submit]").first.click()
            self.page.wait_for_load_state("load")
        except PlaywrightError as exc:
            self.warn(f"submitting the search form failed: {exc.message}")
            return
        self.settle()
        self.step("submit form", f"submitted the form with its defaults ({found.get('label')!r})")

    def click_next(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        visited = {self.page.url}
        for _ in range(self.limits.max_pages):
            if self.time_left() <= 0:
                return
            try:
                found = self.page.evaluate(FIND_NEXT_JS)
            except PlaywrightError:
                return
            if not found:
                return
            before_requests, before_url = self.requests, self.page.url
            before_size = len(self.page.content())
            try:
                self.page.locator("[data-amazoniax-next]").first.click()
                self.page.wait_for_load_state("load")
            except PlaywrightError as exc:
                self.warn(f"clicking {found.get('text')!r} failed: {exc.message}")
                return
            self.settle()
            changed = (
                self.requests > before_requests
                or self.page.url != before_url
                or len(self.page.content()) != before_size
            )
            if not changed or (self.page.url != before_url and self.page.url in visited):
                return
            visited.add(self.page.url)
            self.step("click next", f"clicked {found.get('text')!r} ({found.get('how')})",
                      next_selector(found))  # fmt: skip

    def scroll(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        height_js = "document.documentElement.scrollHeight"
        for _ in range(self.limits.max_pages):
            if self.time_left() <= 0:
                return
            try:
                before_height = int(self.page.evaluate(height_js))
                before_requests = self.requests
                self.page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
                self.page.mouse.wheel(0, 400)
                self.settle()
                grew = int(self.page.evaluate(height_js)) > before_height
            except PlaywrightError:
                return
            if not grew and self.requests == before_requests:
                return
            self.step("scroll", "scrolled to the bottom; the page grew")

    def data_seen(self) -> bool:
        for seen in self.seen:
            if not 200 <= seen.status < 300 or seen.text is None:
                continue
            records = seen.records()
            if records is not None and records.count and records.format != "html":
                return True
        try:
            found = find_records(Entry(0, "GET", self.page.url, 200, mime="text/html",
                                       body=self.page.content().encode()))  # fmt: skip
        except Exception:  # noqa: BLE001 - a page that cannot be parsed holds no records
            return False
        return found is not None and found.count > 0

    def follow_hub_links(self) -> None:
        from playwright.sync_api import Error as PlaywrightError

        try:
            links = self.page.evaluate(DATA_LINKS_JS)
        except PlaywrightError:
            return
        origin = urlsplit(self.page.url)[:2]
        hubs = [
            str(link["href"]).split("#")[0]
            for link in links
            if str(link.get("href", "")).startswith("http")
            and urlsplit(str(link["href"]))[:2] == origin
            and data_link_score(str(link["href"]), str(link.get("text", ""))) == 1
        ]
        for href in list(dict.fromkeys(hubs))[:2]:
            if self.time_left() <= 0 or href == self.page.url.split("#")[0]:
                continue
            try:
                self.page.goto(href, wait_until="load")
            except PlaywrightError:
                continue
            self.settle()
            self.step("follow link", "a link that looks like a data page")
            self.follow_data_links()
            self.click_next()
            self.scroll()
            if self.data_seen():
                return
