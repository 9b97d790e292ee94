"""Text size and contrast: plain forms that work without JavaScript, remembered in cookies,
and a settings form that only ever sends the reader back to a page of this site."""
from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.adventure import choose_first, start


def test_when_text_size_and_contrast_are_chosen_without_javascript_then_the_next_pages_keep_them(
        page_without_javascript):
    page = page_without_javascript
    start(page)
    url = page.url
    page.get_by_text("Text size and contrast").click()

    page.get_by_role("button", name="Largest").click()
    page.get_by_text("Text size and contrast").click()
    page.get_by_role("button", name="High").click()

    assert page.url == url, f"the settings form went to {page.url} instead of back to {url}"
    html = page.locator("html")
    expect(html, "the chosen text size and contrast are not applied").to_have_class("text-larger contrast-high")
    choose_first(page, 1)
    expect(html, "the next chapter forgot the settings").to_have_class("text-larger contrast-high")
    page.get_by_text("Text size and contrast").click()
    expect(page.get_by_role("button", name="High")).to_have_attribute("aria-pressed", "true")
    font_size = page.evaluate("getComputedStyle(document.documentElement).fontSize")
    assert font_size == "25px", f"the largest text is {font_size} at the root, not 25px"


BACK = [  # (Referer, where the form goes back to)
    ("{base}/adventures/abc/chapters/3", "/adventures/abc/chapters/3"),
    ("{base}/?world=x", "/?world=x"),
    ("https://elsewhere.example/adventures/abc", "/"),
    ("{base}//elsewhere.example/path", "/"),  # a protocol-relative Location would leave the site
    ("{base}/\\elsewhere.example/path", "/"),  # and so would "/\\", which browsers read as "//"
    (None, "/"),
]


def test_when_a_setting_is_sent_then_it_goes_back_only_to_a_page_of_this_site(client, server):
    for referer, back in BACK:
        headers = {"referer": referer.format(base=server.base_url)} if referer else {}

        response = client.post("/settings", data={"contrast": "high", "text_size": "huge"}, headers=headers)

        assert response.status_code == 303, f"the settings form answered {response.status_code}"
        location = response.headers["location"]
        assert location == back, f"the Referer {referer} sent the reader to {location}, not {back}"
        assert response.cookies.get("lanternpath_contrast") == "high"
        assert response.cookies.get("lanternpath_text_size") == "normal", "an unknown text size was stored as it came"
