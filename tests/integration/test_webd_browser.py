"""The account page in a real browser (#16): Debian's headless Chromium,
driven by python3-selenium through chromedriver, goes through sign-in,
the POP page followed by a real POP3 session showing the change, an app
password used by real POP3 and SMTP logins then revoked, two-step
enrolment (codes computed here from the secret with the test's own RFC
6238), two-step sign-in, a domain administrator's actions and a
cross-domain attempt refused. Every page is saved as a screenshot at a
phone size (390x844) and a desktop size (1280x900) under
$POSTERN_BUILD/screenshots/. One Chromium for the module."""
import re
import shutil
import time

import pytest

from account_site import DOMAIN, OTHER, Site, totp
from conftest import BUILD

ANN = f"ann@{DOMAIN}"
ADMIN = f"boss@{DOMAIN}"
EVE = f"eve@{OTHER}"
PW = "password1"
SIZES = {"phone": (390, 844, True), "desktop": (1280, 900, False)}
SHOTS = BUILD / "screenshots"
STATE = {}          # carried from one step of the walk-through to the next

webdriver = pytest.importorskip("selenium.webdriver",
                                reason="python3-selenium is not installed")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("Debian's chromium and chromium-driver are not installed",
                allow_module_level=True)
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service   # noqa: E402
from selenium.webdriver.common.by import By             # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("site"))
    s.add_user(ANN, PW)
    s.add_user(ADMIN, PW, "admin=domain")
    s.add_user(EVE, PW)
    s.start("webd", "pop3d", "submitd")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser(site):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--ignore-certificate-errors", "--disable-dev-shm-usage",
              "--window-size=1280,900"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                         options=opts)
    d.set_page_load_timeout(30)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield d
    d.quit()


def url(site, path):
    return f"https://localhost:{site.ports['https']}{path}"


def shot(d, name):
    """The whole page at both sizes (the viewport set as a device would)."""
    for size, (w, h, mobile) in SIZES.items():
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": w, "height": h, "deviceScaleFactor": 1,
                           "mobile": mobile})
        full = d.execute_script("return document.documentElement.scrollHeight")
        d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                          {"width": w, "height": max(h, min(full, 4000)),
                           "deviceScaleFactor": 1, "mobile": mobile})
        # Nothing wider than the viewport: no sideways scrolling.
        assert d.execute_script(
            "return document.documentElement.scrollWidth") <= w, (name, size)
        d.save_screenshot(str(SHOTS / f"{name}-{size}.png"))
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def fill(d, **fields):
    for name, value in fields.items():
        el = d.find_element(By.NAME, name)
        el.clear()
        el.send_keys(value)


def click_and_wait(d, el):
    """Click, then wait until the next page has replaced this one (a
    click returns before a form's answer has loaded)."""
    el.click()

    def gone(_):
        # Chromium reports an element of a replaced page either as stale
        # or as "does not belong to the document": both mean gone.
        try:
            el.is_enabled()
            return False
        except WebDriverException:
            return True
    WebDriverWait(d, 20).until(gone)
    WebDriverWait(d, 20).until(lambda d: d.execute_script(
        "return document.readyState") == "complete")


def submit(d, text):
    click_and_wait(d, d.find_element(By.XPATH,
                                     f"//button[normalize-space()='{text}']"))


def link(d, text):
    click_and_wait(d, d.find_element(By.LINK_TEXT, text))


def sign_in(d, site, addr, pw):
    d.delete_all_cookies()
    d.get(url(site, "/signin"))
    fill(d, address=addr, password=pw)
    submit(d, "Sign in")


def test_sign_in(site, browser):
    d = browser
    d.get(url(site, "/signin"))
    assert d.title == "Sign in · Postern"
    shot(d, "01-signin")
    fill(d, address=ANN, password="not-it")
    submit(d, "Sign in")
    assert "Wrong address or password." in d.page_source
    shot(d, "02-signin-failed")
    fill(d, address=ANN, password=PW)
    submit(d, "Sign in")
    assert d.current_url.endswith("/account")
    assert ANN in d.find_element(By.CLASS_NAME, "who").text
    # The session cookie as the browser keeps it.
    c = d.get_cookie("__Host-postern")
    assert c["httpOnly"] and c["secure"] and c["sameSite"] == "Strict"
    shot(d, "03-account")


def test_pop_settings_then_a_real_pop3_session(site, browser):
    d = browser
    sign_in(d, site, ANN, PW)       # each test stands alone
    for i in range(2):
        site.cli("deliver", ANN, input=f"Subject: before {i}\r\n\r\nx\r\n"
                 .encode())
    ok, p = site.pop3_login(ANN, PW)
    assert ok and p.stat()[0] == 2
    p.quit()
    link(d, "POP download")
    shot(d, "04-pop")
    d.find_element(By.CSS_SELECTOR, "input[name=pop][value=since-now]").click()
    d.find_element(By.CSS_SELECTOR, "input[name=after][value=archive]").click()
    submit(d, "Save Changes")
    msg = d.find_element(By.CSS_SELECTOR, ".msg.ok").text
    assert "Enable POP for mail that arrives from now on" in msg
    assert "archive Postern's copy" in msg
    shot(d, "05-pop-saved")
    ok, p = site.pop3_login(ANN, PW)
    assert ok and p.stat()[0] == 0          # older mail is not offered
    p.quit()
    site.cli("deliver", ANN, input=b"Subject: after\r\n\r\ny\r\n")
    ok, p = site.pop3_login(ANN, PW)
    assert ok and p.stat()[0] == 1
    p.retr(1)
    p.dele(1)
    p.quit()
    assert "Archive" in site.cli("user", "messages", ANN)   # archived


def test_app_password_for_real_pop3_and_smtp_then_revoked(site, browser):
    d = browser
    sign_in(d, site, ANN, PW)       # each test stands alone
    link(d, "App passwords")
    shot(d, "06-app-passwords")
    fill(d, name="Phone <b>mail</b>")
    submit(d, "Generate")
    apppw = d.find_element(By.ID, "app-password").text
    assert re.fullmatch(r"[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}", apppw)
    assert "Incoming Mail (POP3) Server" in d.page_source
    shot(d, "07-app-password-created")
    ok, p = site.pop3_login(ANN, apppw)
    assert ok
    p.quit()
    assert site.smtp_login(ANN, apppw)
    link(d, "App passwords")
    row = d.find_element(By.XPATH, "//tr[td='Phone <b>mail</b>']")
    assert "127.0.0.1" in row.text
    shot(d, "08-app-passwords-used")
    click_and_wait(d, row.find_element(
        By.XPATH, ".//button[normalize-space()='Revoke']"))
    assert "Revoked." in d.page_source
    assert site.pop3_login(ANN, apppw)[0] is False
    assert site.smtp_login(ANN, apppw) is False


def test_password_page(site, browser):
    d = browser
    sign_in(d, site, ANN, PW)       # each test stands alone
    link(d, "Password")
    shot(d, "09-password")


def test_two_step_enrolment_and_sign_in(site, browser):
    d = browser
    link(d, "2-Step Verification")
    shot(d, "10-two-step-off")
    fill(d, password=PW)
    submit(d, "Turn on")
    assert d.find_element(By.CSS_SELECTOR, "svg.qr").is_displayed()
    secret = d.find_element(By.ID, "totp-secret").text
    shot(d, "11-two-step-enrol")
    fill(d, code=totp(secret))
    submit(d, "Confirm")
    codes = [li.text for li in
             d.find_elements(By.CSS_SELECTOR, "#recovery-codes li")]
    assert len(codes) == 10
    STATE["codes"] = codes
    shot(d, "12-two-step-recovery-codes")
    assert site.pop3_login(ANN, PW)[0] is False     # mail: app passwords now
    submit(d, "Sign out")
    assert d.current_url.endswith("/signin")
    sign_in(d, site, ANN, PW)
    assert d.current_url.endswith("/signin/code")
    shot(d, "13-signin-code")
    # The enrolment used this step's code; the next step's is in the
    # window and not used yet.
    fill(d, code=totp(secret, time.time() + 30))
    submit(d, "Verify")
    assert d.current_url.endswith("/account")
    assert "2-Step Verification" in d.page_source


def test_domain_administrator(site, browser):
    d = browser
    sign_in(d, site, ADMIN, PW)
    link(d, "Administration")
    assert ANN in d.page_source and EVE not in d.page_source
    shot(d, "14-admin")
    fill(d, address=f"new@{DOMAIN}", password="newuser-1")
    submit(d, "Add account")
    assert "Account added." in d.page_source
    link(d, ANN)
    shot(d, "15-admin-user")
    d.find_element(By.CSS_SELECTOR, "input[name=pop][value=all]").click()
    submit(d, "Save Changes")
    assert "Saved." in d.page_source
    fill(d, password="reset-pass-1")
    submit(d, "Reset password")
    assert "Password reset." in d.page_source
    shot(d, "16-admin-reset")
    assert site.pop3_login(f"new@{DOMAIN}", "newuser-1")[0]
    # Another domain: refused, and nothing of it shown.
    d.get(url(site, f"/admin/user?address={EVE}"))
    assert "Not allowed" in d.title and EVE not in d.page_source
    shot(d, "17-admin-other-domain-403")
    # The user is told at the next sign-in (with a recovery code for the
    # second step).
    sign_in(d, site, ANN, "reset-pass-1")
    assert d.current_url.endswith("/signin/code")
    fill(d, code=STATE["codes"][0])
    submit(d, "Verify")
    assert d.current_url.endswith("/account")
    assert "reset your password" in d.find_element(By.CSS_SELECTOR,
                                                   ".msg.error").text
    shot(d, "18-account-after-reset")
