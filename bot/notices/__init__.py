"""Push notices: subscribers hear about new courses that fit them, exactly once.

``select`` decides who gets which new courses (pure, fast, testable);
``message`` builds the digest a user reads; ``runner`` sends it: multicast to
users who get the same digest (≤ 500 per call), a retry key stored before
every call, the monthly quota read first, a rate limit, quiet hours and a
daily cap, and a log of every delivery per user and course.
"""
