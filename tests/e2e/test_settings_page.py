"""The settings page in a real headless Chromium: toggle a requirement, watch the preview
change, save, and the next request through Envoy is blocked."""

from __future__ import annotations

import shutil
import time

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.e2e


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "make test installs Debian's chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1400",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    b = webdriver.Chrome(service=Service(driver), options=options)
    yield b
    b.quit()


def row(browser, provider: str):
    return browser.find_element(By.CSS_SELECTOR, f'#preview tr[data-provider="{provider}"]')


def test_toggle_preview_save_then_blocked_through_envoy(browser, org, tmp_path):
    stack = org.stack
    assert org.post({"model": "deepseek/deepseek-v3.2", "messages": []}).status_code == 200  # no policy yet

    browser.get(f"{stack.authz_http}/settings#token={stack.token(org.id, subject='owner@acme')}")
    # The live preview re-renders its rows: a row found a moment ago may be gone, so every check
    # re-finds it and waits for the condition rather than reading once.
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(EC.text_to_be_present_in_element((By.ID, "who"), f"for {org.id}"))
    assert "#token" not in browser.current_url, "the token does not stay in the address bar"
    wait.until(lambda b: row(b, "deepseek").get_attribute("data-allowed") == "true")

    # Keyboard only: tab to the GDPR toggle and press space.
    gdpr = browser.find_element(By.ID, "require_gdpr")
    gdpr.send_keys(Keys.SPACE)
    wait.until(lambda b: row(b, "deepseek").get_attribute("data-allowed") == "false")
    wait.until(lambda b: "GDPR (not met)" in row(b, "deepseek").text)
    # Each reason says where the value it was judged on comes from, and when it was checked.
    wait.until(
        lambda b: (
            "source: sample: DeepSeek trust/data-policy page (illustrative), checked 2026-11-01"
            in row(b, "deepseek").text
        )
    )
    wait.until(lambda b: "GDPR (unknown)" in row(b, "groq").text)
    wait.until(lambda b: row(b, "azure").get_attribute("data-allowed") == "true")
    wait.until(lambda b: "blocked" in b.find_element(By.ID, "preview-summary").text)

    browser.find_element(By.ID, "enabled").send_keys(Keys.SPACE)
    browser.find_element(By.ID, "save").send_keys(Keys.ENTER)
    wait.until(EC.text_to_be_present_in_element((By.ID, "save-result"), "Saved: policy version 1 is now enforced"))
    browser.save_screenshot(str(tmp_path / "settings.png"))

    deadline = time.monotonic() + 5
    while (r := org.post({"model": "deepseek/deepseek-v3.2", "messages": []})).status_code != 403:
        assert time.monotonic() < deadline, "the saved policy was not enforced"
        time.sleep(0.02)
    assert r.json()["error"]["failed_requirements"] == ["gdpr"]

    # A deny list typed into the page: the preview names the list before anything is saved.
    deny = browser.find_element(By.ID, "provider_denylist")
    deny.send_keys("azure")
    wait.until(lambda b: row(b, "azure").get_attribute("data-allowed") == "false")
    wait.until(lambda b: "provider deny list" in row(b, "azure").text)

    # The block shows up under "Recent blocks" after a reload of the page.
    browser.refresh()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#events tbody"), "provider_not_compliant"))


def test_page_runs_no_inline_code(stack):
    import httpx

    page = httpx.get(f"{stack.authz_http}/settings")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text and "<style>" not in page.text
    assert httpx.get(f"{stack.authz_http}/settings/settings.js").headers["content-type"].startswith("text/javascript")


def test_every_control_is_labelled(browser, org):
    """Signed in, so the requirement checkboxes (built from GET /v1/requirements) are there too:
    one per requirement a policy flag asks for, labelled with the registry's label."""
    import httpx

    stack = org.stack
    token = stack.token(org.id)
    browser.get(f"{stack.authz_http}/settings#token={token}")
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "who"), f"for {org.id}"))
    listed = httpx.get(f"{stack.authz_http}/v1/requirements", headers={"authorization": f"Bearer {token}"}).json()
    flags = [r for r in listed["requirements"] if r["flag"]]
    assert len(flags) >= 7
    for r in flags:
        label = browser.find_element(By.CSS_SELECTOR, f'label[for="{r["policy_field"]}"]')
        assert r["label"] in label.get_attribute("textContent")
    for control in browser.find_elements(By.CSS_SELECTOR, "input"):
        control_id = control.get_attribute("id")
        labels = browser.find_elements(By.CSS_SELECTOR, f'label[for="{control_id}"]')
        assert labels and labels[0].get_attribute("textContent").strip(), f"input #{control_id} has no label"
    live = browser.find_elements(By.CSS_SELECTOR, "[aria-live], [role=status]")
    assert {e.get_attribute("id") for e in live} >= {"who", "save-result", "preview-summary"}


def test_a_member_cannot_sign_in_to_manage(browser, org):
    browser.get(f"{org.stack.authz_http}/settings#token={org.stack.token(org.id, role='member')}")
    WebDriverWait(browser, 10).until(EC.text_to_be_present_in_element((By.ID, "who"), "owner or admin required"))
    assert not browser.find_element(By.ID, "policy-form").is_displayed()


def test_residency_typed_into_the_page_shows_in_the_preview(browser, org):
    """Data residency is a field of the form: typing a region re-renders the preview with the
    requirement named, and whether each provider's regions are unknown or outside the set."""
    import httpx

    stack = org.stack
    token = stack.token(org.id, subject="owner@acme")
    watched = httpx.put(
        f"{stack.authz_http}/v1/orgs/{org.id}/alerts",
        headers={"authorization": f"Bearer {token}"},
        json={"alerts": {"watched_models": ["mistral-large"]}},
    )
    assert watched.status_code == 200, watched.text
    browser.get(f"{stack.authz_http}/settings#token={token}")
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(EC.text_to_be_present_in_element((By.ID, "who"), f"for {org.id}"))
    wait.until(lambda b: row(b, "mistral").get_attribute("data-allowed") == "true")
    wait.until(
        EC.text_to_be_present_in_element((By.ID, "orphans"), "Watched models: mistral-large (2 compliant providers)")
    )
    browser.find_element(By.ID, "data_residency").send_keys("EU")  # the page sends it in lower case
    wait.until(lambda b: "data processed only in allowed regions (unknown)" in row(b, "deepseek").text)
    wait.until(lambda b: "data processed only in allowed regions (not met)" in row(b, "azure").text)
    wait.until(lambda b: row(b, "mistral").get_attribute("data-allowed") == "true")
    wait.until(EC.text_to_be_present_in_element((By.ID, "orphans"), "mistral-large (1 compliant provider)"))


def test_list_pickers_offer_catalog_ids_marked_by_the_policy_being_edited(browser, org):
    """The provider and model lists are pickers of catalog ids, each marked as meeting the
    policy being edited or not; picking one adds it to the list and the preview follows."""
    from selenium.webdriver.support.ui import Select

    stack = org.stack
    browser.get(f"{stack.authz_http}/settings#token={stack.token(org.id, subject='owner@acme')}")
    wait = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,))
    wait.until(EC.text_to_be_present_in_element((By.ID, "who"), f"for {org.id}"))
    browser.find_element(By.ID, "require_gdpr").send_keys(Keys.SPACE)
    picker = "provider_denylist-picker"
    wait.until(EC.text_to_be_present_in_element((By.ID, picker), "deepseek (blocked)"))
    wait.until(EC.text_to_be_present_in_element((By.ID, picker), "azure (meets the policy)"))
    wait.until(
        EC.text_to_be_present_in_element((By.ID, "model_denylist-picker"), "deepseek-r1-0528 (no compliant provider)")
    )
    Select(browser.find_element(By.ID, picker)).select_by_value("azure")
    assert browser.find_element(By.ID, "provider_denylist").get_attribute("value") == "azure"
    wait.until(lambda b: "provider deny list" in row(b, "azure").text)
    wait.until(EC.text_to_be_present_in_element((By.ID, picker), "azure (blocked)"))
    # The preview sits beside the form on a wide screen, below it on a narrow one.
    browser.set_window_size(1400, 1400)
    wait.until(
        lambda b: (
            b.find_element(By.ID, "preview-section").rect["x"] > b.find_element(By.ID, "policy-form").rect["x"] + 300
        )
    )
    browser.set_window_size(800, 1400)
    wait.until(
        lambda b: (
            b.find_element(By.ID, "preview-section").rect["y"] > b.find_element(By.ID, "policy-form").rect["y"] + 300
        )
    )
