"""`leaktriage serve` in a real browser: headless Chromium (Debian's chromium and chromium-driver)
driven by Selenium loads the pages of a running `leaktriage serve`, types queries into the search box,
opens a message, follows a download and a canned query, and keeps a screenshot of each main page.

Screenshots go to $LEAKTRIAGE_SCREENSHOTS (default: a temporary folder); the test prints the folder.
Needs: pip install '.[serve,browsertest]' and apt-get install chromium chromium-driver. Skipped when
they are missing, except under CI (CI set), where that fails.
"""
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from support.readkit import CODEWORD_PDF, PE, build_reading
from test_search_common import REPO

CHROMIUM = os.environ.get("LEAKTRIAGE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LEAKTRIAGE_CHROMEDRIVER", "/usr/bin/chromedriver")


def _missing():
    try:
        import selenium  # noqa: F401
        import datasette  # noqa: F401
    except ImportError as exc:
        return "%s (pip install '.[serve,browsertest]')" % exc
    for p in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            return "%s not found (apt-get install -y chromium chromium-driver)" % p
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    why = _missing()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("browser")
    dump, m, db, locs = build_reading(tmp)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(tmp / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "leaktriage", "serve", str(db), "--port", str(port)],
                            cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT)
    base = "http://127.0.0.1:%d" % port
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/triage/inbox", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail("leaktriage serve did not answer: %s" % (tmp / "serve.log").read_text(errors="replace"))
        time.sleep(0.3)
    yield base, db, locs, tmp
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    tmp = server[3]
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--user-data-dir=%s" % (tmp / "chromium-profile")):
        opts.add_argument(a)
    drv = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def shots(server, capsys_module=None):
    d = os.environ.get("LEAKTRIAGE_SCREENSHOTS") or str(server[3] / "screenshots")
    os.makedirs(d, exist_ok=True)
    return d


def _shot(drv, folder, name):
    path = os.path.join(folder, name)
    drv.save_screenshot(path)
    assert os.path.getsize(path) > 5000, path       # a real picture of a rendered page
    return path


def _search(drv, query):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    box = drv.find_element(By.ID, "q")
    box.clear()
    box.send_keys(query)
    box.send_keys(Keys.ENTER)
    _wait(drv, lambda d: d.execute_script("return document.readyState") == "complete")


def _wait(drv, cond, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(drv, timeout).until(cond)


def _rows(drv):
    from selenium.webdriver.common.by import By
    return drv.find_elements(By.CSS_SELECTOR, "table.rows-and-columns tbody tr")


def test_the_site_in_a_browser(server, browser, shots, capsys):
    from selenium.webdriver.common.by import By
    base, db, locs, tmp = server
    drv = browser
    taken = []

    # 1. the site opens on the emails: one row per email, newest first, readable columns, no digests
    drv.get(base + "/")
    _wait(drv, lambda d: "/triage/inbox" in d.current_url)
    heads = [th.text.strip().split("\n")[0].replace(" ▲", "").replace(" ▼", "")
             for th in drv.find_elements(By.CSS_SELECTOR, "table.rows-and-columns thead th")]
    assert heads[:7] == ["id", "date", "subject", "from_text", "to_text", "custodians", "copies"], heads
    assert not any("sha256" in h for h in heads)
    assert len(_rows(drv)) == 5
    assert "Paul Roux, Zoé Martin" in drv.page_source and "2 copies" in drv.find_element(By.TAG_NAME, "body").text
    assert drv.find_element(By.ID, "q").is_displayed()
    taken.append(_shot(drv, shots, "01-emails.png"))

    # 2. leaktriage's query language in the search box
    _search(drv, "from:roux")
    assert "_q=from" in drv.current_url and len(_rows(drv)) == 1
    _search(drv, "risk:disguised")
    assert len(_rows(drv)) == 2
    taken.append(_shot(drv, shots, "02-search-risk-disguised.png"))

    # 3. a malformed query says so, in red, with nothing listed
    _search(drv, "(facture OR devis")
    err = drv.find_element(By.ID, "lt-error")
    assert err.is_displayed() and "unclosed '('" in err.text
    assert len(_rows(drv)) == 0
    taken.append(_shot(drv, shots, "03-malformed-query.png"))

    # 4. words inside a PDF attachment find the message; its page reads like an email
    _search(drv, CODEWORD_PDF)
    rows = _rows(drv)
    assert len(rows) == 1
    rows[0].find_element(By.CSS_SELECTOR, "td.col-subject a").click()
    _wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "h1.lt-subject"))
    assert drv.find_element(By.CSS_SELECTOR, "h1.lt-subject").text == "Réunion à l'Élysée"
    body = drv.find_element(By.CSS_SELECTOR, "pre.lt-body").text
    assert "La réunion à l'Élysée coûte 1 200 €" in body
    atts = drv.find_elements(By.CSS_SELECTOR, "table.lt-attachments tbody tr")
    assert len(atts) == 7 and "executable" in atts[1].text
    taken.append(_shot(drv, shots, "04-message.png"))

    # 5. the download link gives the exact bytes, checked, as a file (never rendered)
    link = drv.find_element(By.LINK_TEXT, "Facture_6561.pdf").get_attribute("href")
    with urllib.request.urlopen(link, timeout=30) as r:
        data = r.read()
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert "attachment" in r.headers["Content-Disposition"]
    assert data == PE and hashlib.sha256(data).hexdigest() == r.headers["X-Leaktriage-SHA256"]

    # 6. an email held twice: the other copy is named on its page
    drv.get(base + "/triage/inbox?_q=rendez-vous")
    _rows(drv)[0].find_element(By.CSS_SELECTOR, "td.col-subject a").click()
    _wait(drv, lambda d: d.find_elements(By.CSS_SELECTOR, "h1.lt-subject"))
    assert "Other copies (1)" in drv.find_element(By.TAG_NAME, "body").text
    taken.append(_shot(drv, shots, "05-message-with-copies.png"))

    # 7. a canned query for the findings
    drv.get(base + "/triage/disguised_executables")
    text = drv.find_element(By.TAG_NAME, "body").text
    assert "Disguised executables" in text and "Facture_6561.pdf" in text and "Facture_6562.pdf" in text
    taken.append(_shot(drv, shots, "06-disguised-executables.png"))

    # 8. a facet narrows the list
    drv.get(base + "/triage/inbox?_facet_array=custodians&custodians__arraycontains=Paul+Roux")
    assert len(_rows(drv)) == 1
    with capsys.disabled():
        print("\nleaktriage serve screenshots (%d): %s" % (len(taken), shots))
