"""What both web apps (the kiosk and the central server) share: error answers, security headers, language and Thai dates, login, QR images, fonts, report pages."""
