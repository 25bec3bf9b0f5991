"""The server's pages in headless Debian Chromium, driven by Selenium (nothing downloaded). The
playground at `/`: type a prompt, watch the text stream in, hover a token for its probability; chat
with a template model. The rating page at `/rate`: two raters, each in a browser, judge a study and the report
counts them. Synth's report, opened from disk: every plot drawn, both sides in view. Skips when chromium or
chromedriver is not installed (`apt-get install chromium chromium-driver`)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

import textmill  # noqa: E402
from textmill.humaneval import Output, create, invite, report  # noqa: E402

from .helpers import (  # noqa: E402
    live,  # noqa: E402
    tiny_model,
    tiny_tokenizer,
)

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")]
KEY = "browser-key"


@pytest.fixture(scope="module")
def models(tiny_run, tmp_path_factory):
    chat = tmp_path_factory.mktemp("llama-chat")
    tok = tiny_tokenizer(chat=True)
    tiny_model("llama", len(tok)).save_pretrained(chat)
    tok.save_pretrained(chat)
    return {"tiny": textmill.load(tiny_run), "chat": textmill.load(chat)}


@contextlib.contextmanager
def chromium(*extra: str):
    """Headless Debian Chromium with a fresh profile and no background network traffic (and `extra` flags)."""
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", *extra):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def set_value(driver, element_id: str, value) -> None:
    driver.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                          "e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change'));", element_id, str(value))


def wait_done(driver) -> str:
    WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "status").text.startswith(("done", "stopped"))
                                    or "error" in d.find_element(By.ID, "status").get_attribute("class"))
    return driver.find_element(By.ID, "status").text


def test_a_prompt_streams_into_the_page_with_token_probabilities(browser, models):
    with live(models, api_key=KEY) as url:
        browser.get(url + "/")
        set_value(browser, "key", KEY)  # the page asks for the key, keeps it, and reloads the models
        WebDriverWait(browser, 30).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
        Select(browser.find_element(By.ID, "model")).select_by_value("tiny")
        Select(browser.find_element(By.ID, "mode")).select_by_value("completion")
        set_value(browser, "max_tokens", 20)
        set_value(browser, "temperature", 0)
        browser.find_element(By.ID, "prompt").send_keys("First")
        browser.find_element(By.ID, "run").click()
        assert wait_done(browser).startswith("done")
        expected = models["tiny"].generate("First", max_new_tokens=20, strategy="greedy")
        assert browser.find_element(By.ID, "output").text.replace("\n", "") == ("First" + expected).replace("\n", "")
        tokens = browser.find_elements(By.CSS_SELECTOR, "#output .tok")
        assert tokens and all(t.get_attribute("data-tip").startswith("p = ") for t in tokens)
        ActionChains(browser).move_to_element(tokens[0]).perform()
        tip = browser.find_element(By.ID, "tip")
        WebDriverWait(browser, 5).until(lambda d: tip.is_displayed())
        assert tip.text.startswith("p = ") and len(tip.text.splitlines()) == 1 + 5  # the token and 5 alternatives


def test_a_chat_keeps_its_history(browser, models):
    with live(models) as url:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
        Select(browser.find_element(By.ID, "model")).select_by_value("chat")
        assert Select(browser.find_element(By.ID, "mode")).first_selected_option.get_attribute("value") == "chat"
        set_value(browser, "max_tokens", 6)
        set_value(browser, "seed", 3)
        for turn in ("the cat sat", "and then"):
            browser.find_element(By.ID, "prompt").send_keys(turn)
            browser.find_element(By.ID, "run").click()
            assert wait_done(browser).startswith("done")
        log = browser.find_elements(By.CSS_SELECTOR, "#chat-log .chat-msg")
        assert [m.text.split(":")[0].lower() for m in log] == ["user", "assistant", "user", "assistant"]
        assert log[2].text.lower() == "user: and then"


def test_a_bad_request_shows_the_servers_message(browser, models):
    with live(models, max_tokens=8) as url:
        browser.get(url + "/")
        WebDriverWait(browser, 30).until(lambda d: len(Select(d.find_element(By.ID, "model")).options) == 2)
        Select(browser.find_element(By.ID, "model")).select_by_value("tiny")
        Select(browser.find_element(By.ID, "mode")).select_by_value("completion")
        set_value(browser, "max_tokens", 20)
        browser.find_element(By.ID, "prompt").send_keys("First")
        browser.find_element(By.ID, "run").click()
        wait_done(browser)
        assert "at most 8" in browser.find_element(By.ID, "status").text


def rate_all(driver, link: str) -> int:
    """Judge every task of the study through the page an invitation `link` opens; the number of tasks judged."""
    driver.get(link)
    driver.find_element(By.ID, "start").click()
    judged = 0
    while True:
        WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#task .card"))
        progress = driver.find_element(By.ID, "progress").text
        if "All done" in driver.find_element(By.ID, "task").text:
            return judged
        if driver.find_elements(By.CSS_SELECTOR, "#rating"):
            for name in ("fluency", "coherence", "grammar"):
                driver.find_element(By.CSS_SELECTOR, f"input[name={name}][value='4']").click()
            driver.find_element(By.CSS_SELECTOR, "#rating button[type=submit]").click()
        else:
            driver.find_element(By.CSS_SELECTOR, "button[data-choice='a']").click()
        judged += 1
        WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "progress").text != progress)


def test_two_raters_judge_a_study_in_the_browser_and_the_report_counts_them(tmp_path):
    study = create([Output(s, p, f"{p} {s} text") for s in ("x", "y") for p in ("one", "two")], tmp_path / "study.db")
    with chromium() as ann, chromium() as bob, live({}, study=study, api_key="secret") as url:  # two browsers, two raters
        links = invite(study, ["ann", "bob"], url)
        assert [rate_all(ann, links["ann"]), rate_all(bob, links["bob"])] == [6, 6]  # 4 items, 2 pairs
        ann.get(url + "/rate?rater=eve&token=" + "0" * 32)  # a made-up invitation: the page says why nothing happens
        ann.find_element(By.ID, "start").click()
        WebDriverWait(ann, 10).until(lambda d: "no valid invitation" in d.find_element(By.ID, "error").text)
        ann.get(url + "/rate")  # no invitation at all
        assert "Open the invitation link" in ann.find_element(By.ID, "welcome").text
    rep = report(study)
    assert rep["raters"] == ["ann", "bob"] and rep["ratings"] == 8 and rep["preferences"] == 4
    assert rep["systems"]["x"]["fluency"]["mean"] == 4


EVIL = """<!doctype html><script>
fetch(API + "/v1/completions", {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
                                body: JSON.stringify({model: "tiny", prompt: "First", max_tokens: 4})})
  .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
</script>"""


def test_pages_on_other_sites_and_names_cannot_use_the_server(models, tmp_path):
    """A page of another site posts `text/plain` to the API (no preflight needed): the server refuses it
    and generates nothing. A name that resolves to 127.0.0.1 (DNS rebinding, here Chromium's resolver
    rule) gets a 400 for every route, the playground included."""
    import functools
    import http.server
    import threading
    import urllib.request

    from .helpers import free_port

    with live(models) as url:
        (tmp_path / "evil.html").write_text(EVIL.replace("API", repr(url)), encoding="utf-8")
        port = free_port()
        site = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=str(tmp_path)))
        threading.Thread(target=site.serve_forever, daemon=True).start()
        api_port = url.rsplit(":", 1)[1]
        try:
            with chromium("--host-resolver-rules=MAP rebind.test 127.0.0.1") as browser:
                browser.get(f"http://127.0.0.1:{port}/evil.html")
                WebDriverWait(browser, 10).until(lambda d: d.title in ("sent", "failed"))
                browser.get(f"http://rebind.test:{api_port}/")
                assert "invalid_host" in browser.find_element(By.TAG_NAME, "body").text
        finally:
            site.shutdown()
        with urllib.request.urlopen(f"{url}/metrics") as r:
            counted = r.read().decode()
    assert 'path="/v1/completions",status="403"' in counted and 'path="/v1/completions",status="200"' not in counted
    assert 'path="/",status="400"' in counted


def test_the_synth_report_draws_every_plot_with_real_and_synthetic_rows_side_by_side(browser, labelled, tmp_path):
    """The synth report opened from disk: every plot loads, nothing runs off the page, and the screenshots
    of the plots that compare the two sides hold both colours, blue (real) and orange (synthetic): the
    real label bars stand beside the synthetic ones, not hidden behind them. The map colours labels."""
    import io

    import numpy as np
    from PIL import Image

    report = tmp_path / "report.html"
    textmill.synthesize(str(labelled), generator="mix:eda+ngram", per_label=60, out=tmp_path / "rows.jsonl",
                        report=str(report), report_fluency=40, near_duplicate_threshold=0.95, progress=False)
    browser.set_window_size(1200, 900)
    browser.get(report.as_uri())
    images = browser.find_elements(By.TAG_NAME, "img")
    assert [i.get_attribute("alt") for i in images] == [
        "scores and gains with their intervals", "length histograms, real and synthetic",
        "map of the rows by the pretrained model's features", "label balance, real and synthetic",
        "share of each label's rows by generator"]
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i) for i in images)
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    colours = {"real": (31, 119, 180), "synthetic": (255, 127, 14), "label 1": (44, 160, 44), "label 2": (214, 39, 40)}
    seen = {}
    for image in images:
        browser.execute_script("arguments[0].scrollIntoView()", image)
        pixels = np.asarray(Image.open(io.BytesIO(image.screenshot_as_png)).convert("RGB")).reshape(-1, 3).astype(int)
        seen[image.get_attribute("alt").split(",")[0].split(" of")[0]] = {
            name: int((np.abs(pixels - rgb).sum(1) < 40).sum()) for name, rgb in colours.items()} | {
            "drawn": float((pixels.sum(1) < 600).mean())}
    assert all(v["drawn"] > 0.01 for v in seen.values()), seen  # no blank plot
    assert seen["length histograms"]["real"] > 200 and seen["length histograms"]["synthetic"] > 200, seen
    balance = seen["label balance"]  # the labels' shares are equal on both sides: as much blue as orange
    assert 0.5 < balance["real"] / balance["synthetic"] < 2, balance
    assert seen["map"]["label 1"] > 100 and seen["map"]["label 2"] > 100, seen["map"]
    assert "nearest training row" in browser.find_element(By.TAG_NAME, "body").text
