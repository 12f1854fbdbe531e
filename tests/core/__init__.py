"""Tests of jupyter_2fa.core: pure logic, a real store on SQLite and PostgreSQL, and real races."""
