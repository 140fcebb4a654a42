//! Live round trips with real Rails: cookies we write are read by Rails' own cookie jar
//! (`interop/rails_codec.rb serve`), and cookies Rails writes now (fresh random IVs) are read by us.
