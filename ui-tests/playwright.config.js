// Galata UI test of the Nimbus sidebar: a real JupyterLab (started here), Debian's chromium, no downloads.
const { execFileSync } = require('child_process');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

/**
 * A free port, chosen once by the main process and inherited by the workers (they load this file again):
 * a fixed port lets two checkouts' UI runs on one machine drive each other's JupyterLab.
 */
function freePort() {
  const code = 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])';
  return execFileSync(process.env.PYTHON || 'python', ['-c', code]).toString().trim();
}
process.env.NIMBUS_UI_PORT = process.env.NIMBUS_UI_PORT || freePort();
const PORT = Number(process.env.NIMBUS_UI_PORT);
const ARTIFACTS = path.resolve(__dirname, '..', 'test-artifacts');
process.env.NIMBUS_HOME = process.env.NIMBUS_HOME || path.join(ARTIFACTS, 'ui-nimbus-home');

module.exports = {
  ...baseConfig,
  reporter: [['list']],
  timeout: 300000,
  expect: { timeout: 30000 },
  workers: 1,
  retries: 0,
  outputDir: path.join(ARTIFACTS, 'playwright'),
  globalTeardown: require.resolve('./teardown.js'),
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${PORT}`,
    trace: 'off',
    video: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run', '--disable-dev-shm-usage']
    }
  },
  webServer: {
    command: `jupyter lab --config jupyter_server_test_config.py --allow-root --ServerApp.ip=127.0.0.1 --ServerApp.port=${PORT}`,
    url: `http://127.0.0.1:${PORT}/lab`,
    timeout: 120000,
    reuseExistingServer: false,
    env: { ...process.env, NIMBUS_HOME: process.env.NIMBUS_HOME }
  }
};
