// Galata UI test of the Nimbus sidebar: a real JupyterLab (started here), Debian's chromium, no downloads.
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const PORT = 8917;
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
    command: 'jupyter lab --config jupyter_server_test_config.py --allow-root --ServerApp.ip=127.0.0.1',
    url: `http://127.0.0.1:${PORT}/lab`,
    timeout: 120000,
    reuseExistingServer: false,
    env: { ...process.env, NIMBUS_HOME: process.env.NIMBUS_HOME }
  }
};
