#!/usr/bin/env bash
# A scripted walkthrough of the aegis-vault command line on a throwaway vault in ./vault-demo/.
# Every value here is fake. Nothing touches your real vault: AEGIS_VAULT_HOME points
# at the demo folder for the whole script.
set -euo pipefail
cd "$(dirname "$0")/.."
demo=$PWD/vault-demo
rm -rf "$demo"
mkdir -m 700 "$demo"
export AEGIS_VAULT_HOME=$demo/home
export AEGIS_VAULT_INSECURE_FAST_KDF=1   # demo only: a weak passphrase KDF, announced below
av() { .venv/bin/aegis-vault "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "aegis-vault keygen   # a 256-bit key for the environment slot (CI, daemons)"
export AEGIS_VAULT_KEY=$(av keygen)
echo "(kept in \$AEGIS_VAULT_KEY, not printed)"

step "echo 'correct horse battery staple' | aegis-vault init --passphrase-stdin"
echo 'correct horse battery staple' | av init --passphrase-stdin

step "aegis-vault slots list"
av slots list

cat > "$demo/.env" <<'ENV'
# the kind of file aegis-vault replaces
GITHUB_TOKEN=ghp_demoDEMOdemoDEMOdemoDEMOdemoDEMO1234
STRIPE_SECRET_KEY=sk_live_demo_51Hdemo000000000000000000
DATABASE_URL=postgres://app:demo-password@db.internal:5432/app
OLLAMA_HOST=http://127.0.0.1:11434
ENV
step "aegis-vault import-env .env --context acme/dev --delete   # secrets in, template out"
av import-env "$demo/.env" --context acme/dev --delete

step "printf 'sk-ant-demo-value' | aegis-vault add anthropic-key --kind api_key --service anthropic --context personal --rotate-every 90"
printf 'sk-ant-demo-value' | av add anthropic-key --kind api_key --service anthropic --context personal --rotate-every 90

step "aegis-vault add ci-deploy --generate --length 40 --prefix dep_ --context acme/prod --rotate-every 30"
av add ci-deploy --generate --length 40 --prefix dep_ --context acme/prod --rotate-every 30

step "aegis-vault list"
av list

step "aegis-vault show GITHUB_TOKEN   # metadata only, never the value"
av show GITHUB_TOKEN

step "aegis-vault get aegis://acme/dev/GITHUB_TOKEN | wc -c   # the value goes into a pipe, not the screen"
av get aegis://acme/dev/GITHUB_TOKEN | wc -c

step "aegis-vault rotate GITHUB_TOKEN --generate --overlap 2h && aegis-vault history GITHUB_TOKEN"
av rotate GITHUB_TOKEN --generate --overlap 2h
av history GITHUB_TOKEN

step "aegis-vault revoke STRIPE_SECRET_KEY && aegis-vault get STRIPE_SECRET_KEY"
av revoke STRIPE_SECRET_KEY --reason "demo"
av get STRIPE_SECRET_KEY || echo "(exit $? — a revoked credential is never handed out)"

step "aegis-vault add leaked --value hunter2   # refused: argv ends up in shell history"
av add leaked --value hunter2 || echo "(exit $?)"

step "grep -c GITHUB_TOKEN vault.db   # names and values are sealed on disk"
grep -c -a -e GITHUB_TOKEN -e ghp_demo "$AEGIS_VAULT_HOME/vault.db" || true

step "aegis-vault audit tail -n 8 && aegis-vault audit verify"
av audit tail -n 8
av audit verify

step "tamper with a copy of the vault: edit one audit entry, then verify"
cp -a "$AEGIS_VAULT_HOME" "$demo/tampered"
.venv/bin/python - "$demo/tampered/vault.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit SET record = replace(record, '\"outcome\":\"denied\"', '\"outcome\":\"ok\"') WHERE record LIKE '%denied%'")
db.commit()
PY
AEGIS_VAULT_HOME=$demo/tampered av audit verify || echo "(exit $? — tampering found)"

step "aegis-vault status"
av status
printf '\nThe demo vault is in %s (delete it with: make clean).\n' "$demo"
