#!/usr/bin/env bash
# Install the real coding-agent CLIs the presets run into a cache directory, for
# tests/test_agent_clis.py.  Reused when already there (one refresh a day).
#
#   tests/helpers/install_agent_clis.sh [CACHE_DIR]
#
# CACHE_DIR defaults to $GASTOWN_AGENT_CLIS, else ~/.cache/gastown-agent-clis.
# npm packages go to CACHE_DIR/npm (programs in CACHE_DIR/npm/node_modules/.bin),
# aider to its own venv in CACHE_DIR/aider (program in CACHE_DIR/aider/bin).
# Exit status 0 when everything is installed; 3 when a registry cannot be reached
# (the tests then skip, saying so); 1 on any other failure.
set -uo pipefail
cache="${1:-${GASTOWN_AGENT_CLIS:-$HOME/.cache/gastown-agent-clis}}"
mkdir -p "$cache"
npm_pkgs=(@anthropic-ai/claude-code @openai/codex @google/gemini-cli opencode-ai)
programs=(claude codex gemini opencode)
max_age_min=$((24 * 60))

fresh() {  # stamp file younger than a day
  [ -f "$1" ] && [ -z "$(find "$1" -mmin +"$max_age_min" 2>/dev/null)" ]
}

status=0
if ! command -v npm >/dev/null; then
  echo "install_agent_clis: npm is not installed" >&2
  status=1
elif ! fresh "$cache/npm/.installed"; then
  if ! timeout 20 npm ping >/dev/null 2>&1; then
    echo "install_agent_clis: the npm registry cannot be reached" >&2
    status=3
  else
    mkdir -p "$cache/npm"
    if timeout 240 npm install --prefix "$cache/npm" --no-audit --no-fund --loglevel=error \
        "${npm_pkgs[@]/%/@latest}" >"$cache/npm.log" 2>&1; then
      ok=1
      for p in "${programs[@]}"; do
        [ -x "$cache/npm/node_modules/.bin/$p" ] || { echo "install_agent_clis: no $p after npm install" >&2; ok=0; }
      done
      [ "$ok" = 1 ] && touch "$cache/npm/.installed" || status=1
    else
      echo "install_agent_clis: npm install failed (see $cache/npm.log)" >&2
      tail -5 "$cache/npm.log" >&2
      status=1
    fi
  fi
fi

py="${PYTHON:-python3}"
if ! fresh "$cache/aider/.installed"; then
  if ! timeout 20 "$py" -m pip download --no-deps --no-binary :none: -d "$cache/.probe" \
      aider-chat --quiet >/dev/null 2>&1; then
    echo "install_agent_clis: PyPI cannot be reached" >&2
    [ "$status" = 0 ] && status=3
  else
    rm -rf "$cache/.probe"
    [ -x "$cache/aider/bin/python" ] || "$py" -m venv "$cache/aider"
    if timeout 300 "$cache/aider/bin/python" -m pip install -q --upgrade aider-chat \
        >"$cache/aider.log" 2>&1 && [ -x "$cache/aider/bin/aider" ]; then
      touch "$cache/aider/.installed"
    else
      echo "install_agent_clis: pip install aider-chat failed (see $cache/aider.log)" >&2
      tail -5 "$cache/aider.log" >&2
      status=1
    fi
  fi
fi
exit "$status"
