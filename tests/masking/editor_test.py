#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""The mask editor (`mimamori mask edit`) in a real browser: headless Chromium driven through
chromedriver (Selenium). Loads the page, drags a corner, adds a mask with a Japanese name and
saves; the saved file validates and holds the expected polygons, the old one is kept as .bak.
Then a bow tie shows `mask validate`'s finding and is not saved. A screenshot is kept in
ARTIFACTS/mask-editor.png.

  editor_test.py MIMAMORI_BINARY ARTIFACTS_DIR
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

W, H = 768, 576
ORIGINAL = {"version": 1, "camera": "kakogawa-test", "masks": [
    {"name": "building windows", "polygon": [[0.25, 0.25], [0.5, 0.25], [0.5, 0.5], [0.25, 0.5]]}]}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def near(fraction, pixels, side):
    return abs(fraction * side - pixels) <= 1.0  # within a pixel of where the pointer went


def main():
    cli, artifacts = sys.argv[1], sys.argv[2]
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mimamori-editor-test-")
    still = os.path.join(work, "still.png")
    masks = os.path.join(work, "masks.json")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={W}x{H}", "-frames:v", "1",
                    still], check=True)
    original_text = json.dumps(ORIGINAL, indent=2) + "\n"
    with open(masks, "w") as f:
        f.write(original_text)

    editor = subprocess.Popen([cli, "mask", "edit", "--still", still, "--masks", masks], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    url = None
    for _ in range(5):
        line = editor.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/[0-9a-f]{32}/)", line)
        if match:
            url = match.group(1)
            break
    check(url, f"no URL printed by mask edit (stderr: {editor.stderr.read() if editor.poll() is not None else ''})")

    options = Options()
    options.add_argument("--headless=new")
    options.add_argument("--no-sandbox")  # the suite runs as root
    options.add_argument("--disable-gpu")
    options.add_argument("--window-size=1400,900")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        wait = WebDriverWait(driver, 20)
        driver.get(url)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
        canvas = driver.find_element(By.ID, "overlay")
        rect = driver.execute_script("return arguments[0].getBoundingClientRect().toJSON();", canvas)
        check(abs(rect["width"] - W) < 0.5 and abs(rect["height"] - H) < 0.5,
              f"the still is not shown at its own size: {rect}")

        def at(x, y):  # W3C actions measure offsets from the element's centre
            return ActionChains(driver).move_to_element_with_offset(canvas, int(x - rect["width"] / 2),
                                                                    int(y - rect["height"] / 2))

        def status():
            return driver.find_element(By.ID, "status").text

        # Drag the building's top-right corner (384, 144) to (420, 130).
        at(384, 144).click_and_hold().move_by_offset(36, -14).release().perform()
        # A new mask with a Japanese name, corner by corner.
        driver.find_element(By.ID, "new-mask").click()
        for x, y in [(100, 300), (200, 300), (200, 400), (100, 400)]:
            at(x, y).click().perform()
        driver.find_element(By.ID, "finish-mask").click()
        name = driver.find_elements(By.CSS_SELECTOR, "input.name")[-1]
        name.click()
        name.send_keys(Keys.CONTROL, "a")  # select the proposed name and type over it, as staff do
        name.send_keys("東側の窓")
        wait.until(lambda d: status() == "valid, not saved yet")
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: status().startswith("saved"))

        saved = json.load(open(masks))
        check(subprocess.run([cli, "mask", "validate", masks], capture_output=True).returncode == 0,
              "the saved file does not validate")
        check(open(masks + ".bak").read() == original_text, "the previous file was not kept as .bak")
        check(len(saved["masks"]) == 2, f"expected 2 masks, saved {saved['masks']}")
        moved = saved["masks"][0]["polygon"]
        check(near(moved[1][0], 420, W) and near(moved[1][1], 130, H), f"the dragged corner is at {moved[1]}")
        check([moved[0], moved[2], moved[3]] == [[0.25, 0.25], [0.5, 0.5], [0.25, 0.5]],
              f"corners that were not dragged moved: {moved}")
        added = saved["masks"][1]
        check(added["name"] == "東側の窓", f"the new mask is named {added['name']!r}")
        expected = [(100, 300), (200, 300), (200, 400), (100, 400)]
        check(len(added["polygon"]) == 4 and all(near(p[0], x, W) and near(p[1], y, H)
                                                 for p, (x, y) in zip(added["polygon"], expected)),
              f"the new mask's corners are {added['polygon']}")
        names = [e.get_property("value") for e in driver.find_elements(By.CSS_SELECTOR, "input.name")]
        check(names == ["building windows", "東側の窓"], f"the mask list shows {names}")

        # A bow tie: validation's message is shown, and Save leaves the file alone.
        before = open(masks, "rb").read()
        driver.find_element(By.ID, "new-mask").click()
        for x, y in [(500, 100), (600, 200), (600, 100), (500, 200)]:
            at(x, y).click().perform()
        driver.find_element(By.ID, "finish-mask").click()
        wait.until(lambda d: "self-intersecting" in d.find_element(By.ID, "findings").text)
        findings = driver.find_element(By.ID, "findings").text
        check("mask 'mask 3' point 0: self-intersecting: edge 0-1 meets edge 2-3" in findings,
              f"the bow tie's finding is not `mask validate`'s: {findings!r}")
        driver.save_screenshot(os.path.join(artifacts, "mask-editor.png"))
        driver.find_element(By.ID, "save").click()
        wait.until(lambda d: status().startswith("not saved"))
        check(open(masks, "rb").read() == before, "an invalid mask set was written")
    finally:
        driver.quit()
        editor.send_signal(signal.SIGINT)
        editor.wait(timeout=10)
    check(editor.returncode == 0, f"mask edit exited {editor.returncode}")
    print("mask editor: drag, new Japanese-named mask, save, bow tie refused: ok")


if __name__ == "__main__":
    main()
