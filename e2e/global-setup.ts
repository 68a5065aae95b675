// The example app imports the built ES module, so build it before the suite runs.
import { execSync } from 'node:child_process';

export default function globalSetup(): void {
  execSync('npm run build', { stdio: 'inherit' });
}
