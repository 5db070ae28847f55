// The VS Code workbench in headless chromium, driven by playwright-core the
// way a user drives it: the status bar read as text, commands run from the
// command palette (F1), quick picks and input boxes answered by typing,
// notifications and editors read from the page. Every step can leave a
// screenshot in the output folder as <scenario>-<step>.png.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const { cleanEnv, homeEnv } = require('./sandbox');
const { PATIENCE_MS, waitFor } = require('./wait');

const STATUS_BAR = '#workbench\\.parts\\.statusbar';
const QUICK_INPUT = '.quick-input-widget';
const QUICK_INPUT_BOX = `${QUICK_INPUT} .quick-input-box input`;

/** Launches chromium with its own HOME/XDG/TMPDIR and opens `url`. */
async function openWorkbench({ chromiumPath, dirs, url, scenario, outDir }) {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Root in a container has no user namespaces for chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    env: { ...cleanEnv(), ...homeEnv(dirs.browser) },
    timeout: PATIENCE_MS,
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 850 } });
    const page = await context.newPage();
    page.setDefaultTimeout(PATIENCE_MS);
    await page.goto(url, { timeout: PATIENCE_MS });
    await page.locator('.monaco-workbench').waitFor({ state: 'visible' });
    await page.locator(STATUS_BAR).waitFor({ state: 'visible' });
    return new Workbench(browser, page, scenario, outDir);
  } catch (err) {
    await browser.close().catch(() => {});
    throw err;
  }
}

class Workbench {
  constructor(browser, page, scenario, outDir) {
    this.browser = browser;
    this.page = page;
    this.scenario = scenario;
    this.outDir = outDir;
    this.screenshots = [];
  }

  /** Saves <outDir>/<scenario>-<step>.png and remembers its path. */
  async screenshot(step) {
    fs.mkdirSync(this.outDir, { recursive: true });
    const file = path.join(this.outDir, `${this.scenario}-${step}.png`);
    // Animations finished at once: a toast caught sliding in is unreadable.
    await this.page.screenshot({ path: file, timeout: PATIENCE_MS, animations: 'disabled' });
    this.screenshots.push(file);
    return file;
  }

  /** The texts of the status bar's items, as a user reads them. */
  async statusBarTexts() {
    return this.page.locator(`${STATUS_BAR} .statusbar-item`).evaluateAll((items) =>
      items.map((item) => (item.innerText || '').replace(/\s+/g, ' ').trim()).filter(Boolean),
    );
  }

  /** The OmniPanel status bar item's text (the contract's "OmniPanel: …"), or undefined. */
  async omnipanelStatus() {
    const texts = await this.statusBarTexts();
    return texts.find((text) => text.startsWith('OmniPanel:'));
  }

  /**
   * The accessibility labels in the OmniPanel item (the element and its
   * children), where screen readers read the contract's label.
   */
  async omnipanelAriaLabels() {
    return this.page.locator(`${STATUS_BAR} .statusbar-item`).evaluateAll((items) => {
      const item = items.find((i) => (i.innerText || '').trim().startsWith('OmniPanel:'));
      if (!item) {
        return [];
      }
      return [item, ...item.querySelectorAll('[aria-label]')].map((e) => e.getAttribute('aria-label')).filter(Boolean);
    });
  }

  /** Waits until the OmniPanel item's text matches `pattern`; returns the match. */
  async waitForStatus(pattern, what) {
    let seen = '(no OmniPanel item)';
    try {
      return await waitFor(`the status bar to show ${what}`, async () => {
        const text = await this.omnipanelStatus();
        seen = text ?? '(no OmniPanel item)';
        return text !== undefined && text.match(pattern);
      });
    } catch (err) {
      throw new Error(`${err.message}: expected ${pattern}, the OmniPanel item shows ${JSON.stringify(seen)}`);
    }
  }

  /**
   * Runs the palette command titled `title` (e.g. "OmniPanel: Pull Model"):
   * F1, the title typed after ">", Enter on the matching entry.
   */
  async runCommand(title) {
    await this.page.keyboard.press('F1');
    const input = this.page.locator(QUICK_INPUT_BOX);
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    // Enter only once the list shows the command, so Enter cannot pick
    // whatever was listed before the filter applied.
    const row = this.page.locator(`${QUICK_INPUT} .monaco-list-row.focused`, { hasText: title });
    await row.waitFor({ state: 'visible' });
    await this.page.keyboard.press('Enter');
  }

  /**
   * Waits for the quick input that a command opened (a quick pick or an
   * input box) to replace the command palette; returns its input.
   */
  async waitForPrompt(what) {
    const input = this.page.locator(QUICK_INPUT_BOX);
    await waitFor(`${what} to open`, async () => {
      if (!(await input.isVisible())) {
        return false;
      }
      const value = await input.inputValue();
      return !value.startsWith('>');
    });
    return input;
  }

  /** The visible notification toast whose text contains `text`. */
  notification(text) {
    return this.page.locator('.notifications-toasts .notification-toast', { hasText: text });
  }

  /** Dismisses every notification (a clean slate for the next step). */
  async clearNotifications() {
    await this.runCommand('Notifications: Clear All Notifications');
    await waitFor('the notifications to be gone', async () => (await this.page.locator('.notifications-toasts .notification-toast').count()) === 0);
  }

  /** Opens the project file `name` with Quick Open (Ctrl+P). */
  async openFile(name) {
    await this.page.keyboard.press('Control+P');
    const input = this.page.locator(QUICK_INPUT_BOX);
    await input.waitFor({ state: 'visible' });
    await input.fill(name);
    const row = this.page.locator(`${QUICK_INPUT} .monaco-list-row.focused`, { hasText: path.basename(name) });
    await row.waitFor({ state: 'visible' });
    await this.page.keyboard.press('Enter');
    await this.page.locator('.tabs-container .tab.active', { hasText: path.basename(name) }).waitFor({ state: 'visible' });
  }

  /** The text of the active editor (its rendered lines, joined). */
  async activeEditorText() {
    return this.page
      .locator('.editor-group-container.active .monaco-editor .view-lines')
      .first()
      .evaluate((lines) =>
        [...lines.querySelectorAll('.view-line')]
          .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
          .map((line) => line.innerText.replace(/\u00a0/g, ' '))
          .join('\n'),
      );
  }

  /**
   * The frame of the OmniPanel chat webview. VS Code nests each webview in
   * two iframes whose names carry no extension id, so the frame is the one
   * holding the view's own transcript element.
   */
  async chatView() {
    return waitFor('the OmniPanel chat view to load', async () => {
      for (const frame of this.page.frames()) {
        if ((await frame.locator('#transcript').count().catch(() => 0)) > 0 && (await frame.locator('#send').count().catch(() => 0)) > 0) {
          return frame;
        }
      }
      return false;
    });
  }

  /** Clicks `button` of the modal dialog that says `text` (a confirm). */
  async answerDialog(text, button) {
    const dialog = this.page.locator('.monaco-dialog-box', { hasText: text });
    await dialog.waitFor({ state: 'visible' });
    await dialog.locator('.dialog-buttons .monaco-button', { hasText: button }).click();
    await dialog.waitFor({ state: 'hidden' });
  }

  /** Reloads the window (Developer: Reload Window) and waits for the workbench again. */
  async reloadWindow() {
    // The page's own load event: the old page is gone once it fires.
    const loaded = this.page.waitForEvent('load', { timeout: PATIENCE_MS });
    await this.runCommand('Developer: Reload Window');
    await loaded;
    await this.page.locator('.monaco-workbench').waitFor({ state: 'visible' });
    await this.page.locator(STATUS_BAR).waitFor({ state: 'visible' });
  }

  /** The title of the active editor tab. */
  async activeTabTitle() {
    return this.page.locator('.editor-group-container.active .tabs-container .tab.active').first().innerText();
  }

  async close() {
    await this.browser.close().catch(() => {});
  }
}

module.exports = { openWorkbench };
