// Whatever the test left deployed in its own NIMBUS_HOME is destroyed, so no local server outlives the run.
const { execFileSync } = require('child_process');

module.exports = async () => {
  const code = [
    'from nimbus_jupyter.api import destroy',
    'from nimbus_jupyter.core.registry import Registry',
    'for r in Registry().all():',
    '    print(destroy(r.name))'
  ].join('\n');
  try {
    execFileSync(process.env.PYTHON || 'python', ['-c', code], { stdio: 'inherit', env: process.env });
  } catch (error) {
    console.error(`teardown: could not destroy leftover deployments: ${error}`);
  }
};
