cd /srv/shop && find . \( -path ./venv -o -path ./logs -o -name __pycache__ \) -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum /etc/shop.env
