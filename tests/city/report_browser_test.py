#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The Mimamori authors
# SPDX-License-Identifier: Apache-2.0
"""`mimamori report`'s report.html in a real browser: headless Chromium through chromedriver
(Selenium). A synthetic fiscal year for six cameras (bench/fleet_gen, one of them with a
collection problem) is reported; the page must show its era heading, the eight sections, tables
whose figures equal report.json's, one SVG bar per month and ground whose drawn height follows
its count, the marked camera named, no script and nothing loaded from elsewhere; printed on A4
it makes a PDF; the screenshot (ARTIFACTS/report.png) is not blank.

  report_browser_test.py MIMAMORI_BINARY FLEET_GEN ARTIFACTS_DIR
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.print_page_options import PrintOptions


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def gray_pixels(png):
    """The screenshot's pixels as 8-bit gray, decoded by ffmpeg."""
    return subprocess.run(["ffmpeg", "-v", "error", "-i", png, "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          check=True, capture_output=True).stdout


def main():
    cli, fleet_gen, artifacts = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(artifacts, exist_ok=True)
    work = tempfile.mkdtemp(prefix="mimamori-report-test-")
    try:
        archive, out = os.path.join(work, "archive"), os.path.join(work, "out")
        subprocess.run([fleet_gen, "--out", archive, "--cameras", "6", "--provisions", "60", "--refusals", "20",
                        "--broken", "1", "--scratch", work], check=True, capture_output=True)
        run = subprocess.run([cli, "report", "--fiscal-year", "2025", "--archive", archive, "--out", out],
                             capture_output=True, text=True)
        check(run.returncode == 1, f"report with a marked camera exits 1, got {run.returncode}: {run.stderr}")
        check("marked: kakogawa-0001:" in run.stderr, f"the marked camera is named on stderr: {run.stderr!r}")
        with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
            figures = json.load(f)

        options = Options()
        options.add_argument("--headless=new")
        options.add_argument("--no-sandbox")  # the suite runs as root
        options.add_argument("--disable-gpu")
        options.add_argument("--window-size=1000,1400")
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            driver.get("file://" + os.path.join(out, "report.html"))
            h1 = driver.find_element(By.TAG_NAME, "h1").text
            check("令和7年度" in h1, f"heading carries the era label: {h1!r}")
            headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
            check(len(headings) == 8 and all(h.startswith(f"{i + 1}.") for i, h in enumerate(headings)),
                  f"eight numbered sections: {headings}")
            check(not driver.find_elements(By.TAG_NAME, "script"), "no script in the page")
            for element in driver.find_elements(By.CSS_SELECTOR, "[src], link[href]"):
                fail(f"the page loads something: {element.get_attribute('outerHTML')[:200]}")

            def cells(table_id):
                rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tr")
                return [[c.text for c in r.find_elements(By.CSS_SELECTOR, "th, td")] for r in rows]

            provisions = cells("provisions")
            by_ground = [int(r[1]) for r in provisions[1:4]]
            check(by_ground == [figures["provisions"]["by_ground"][g]
                                for g in ("law", "emergency", "criminal-investigation")],
                  f"provisions table {provisions} against {figures['provisions']}")
            check(int(provisions[4][1]) == figures["provisions"]["total"] == 60, f"total provisions {provisions[4]}")
            bodies = {r[0]: int(r[1]) for r in cells("bodies")[1:]}
            check(bodies == figures["provisions"]["by_body"], f"bodies {bodies}")
            refusals = cells("refusals")
            check(int(refusals[1][1]) == figures["refusals"]["disclosure"], f"disclosure line {refusals[1]}")
            check(sum(int(r[1]) for r in refusals[1:]) == 20, f"all 20 refusals listed: {refusals}")
            extracts = cells("extracts")
            check(int(extracts[0][1]) == figures["extracts"]["count"] == 60, f"extracts {extracts}")
            verification = cells("verification")
            check(len(verification) == 7, f"one verification row per camera: {len(verification) - 1}")
            for row, cam in zip(verification[1:], figures["cameras"]):
                check(row[0] == cam["id"] and row[2] == cam["last_checkpoint"] and ":" in row[2],
                      f"verification row {row} against {cam['id']} {cam['last_checkpoint']}")
            marked = driver.find_elements(By.CSS_SELECTOR, "#verification tr.marked")
            check(len(marked) == 1 and "kakogawa-0001" in marked[0].text, "the broken camera's row is marked")
            check("kakogawa-0001" in driver.find_element(By.ID, "marked").text, "the warning names the camera")

            bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
            check(len(bars) == 36, f"12 months x 3 grounds bars, got {len(bars)}")
            expected = {(m["month"], g): m[g] for m in figures["provisions"]["by_month"]
                        for g in ("law", "emergency", "criminal-investigation")}
            top = max(expected.values())
            for bar in bars:
                key = (bar.get_attribute("data-month"), bar.get_attribute("data-ground"))
                count = int(bar.get_attribute("data-count"))
                check(expected.get(key) == count, f"bar {key} shows {count}, report.json says {expected.get(key)}")
                drawn = bar.rect["height"]  # as laid out by the browser, CSS pixels
                check(abs(drawn - count / top * 170) <= 1.0, f"bar {key}: drawn {drawn} px for {count} of {top}")

            shot = os.path.join(artifacts, "report.png")
            driver.save_screenshot(shot)
            pixels = gray_pixels(shot)
            dark = sum(1 for p in pixels if p < 128)
            check(len(set(pixels)) > 8 and dark > len(pixels) // 200,
                  f"screenshot is blank: {len(set(pixels))} levels, {dark} dark pixels")

            printing = PrintOptions()
            printing.page_width, printing.page_height = 21.0, 29.7  # A4, cm
            pdf = base64.b64decode(driver.print_page(printing))
            with open(os.path.join(artifacts, "report.pdf"), "wb") as f:
                f.write(pdf)
            boxes = re.findall(rb"/MediaBox \[0 0 ([0-9.]+) ([0-9.]+)\]", pdf)
            check(pdf.startswith(b"%PDF") and boxes and all(abs(float(w) - 595.3) < 2 and abs(float(h) - 841.9) < 2
                                                             for w, h in boxes),
                  f"printing makes A4 pages: {boxes[:3]}")
        finally:
            driver.quit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("ok: report.html rendered; headings, tables, bars and screenshot checked")


if __name__ == "__main__":
    main()
