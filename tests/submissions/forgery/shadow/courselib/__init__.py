"""Forgery (shadowing): a fake courselib package next to the answer."""

raise ImportError("the student's courselib was imported instead of the course's")
