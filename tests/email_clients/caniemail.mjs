// Reads an HTML email on stdin; prints caniemail's verdict as JSON for the clients named in argv:
// {"errors": [...], "warnings": [...], "notes": [...]}, each "`feature` is not supported by `client`".
import { readFileSync } from 'node:fs';
import { doIUseEmail } from '@jsx-email/doiuse-email';

const html = readFileSync(0, 'utf8');
const result = doIUseEmail(html, { emailClients: process.argv.slice(2) });
const unique = (list) => [...new Set(list || [])];
process.stdout.write(JSON.stringify({
  errors: unique(result.errors),
  warnings: unique(result.warnings),
  notes: unique(result.notes),
}));
