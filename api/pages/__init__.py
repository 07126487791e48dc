"""The admin pages for people: HTML shells whose scripts read the admin JSON API."""
