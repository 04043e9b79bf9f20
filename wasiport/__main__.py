from wasiport.cli import entry

entry()
